//! `sophon plugin install <FILE|URL>`: a plugin into the operator's configuration, pinned.
//!
//! The component is read (a file) or downloaded (an `http(s)` URL, only with `--sha256`
//! given, and at most [`MAX_PLUGIN_BYTES`]), checked against the expected SHA-256, inspected
//! (it must carry a valid manifest), copied to `plugins/<name>-<version>.wasm` beside the
//! configuration file, and registered as `[plugins.<name>]` with `source`, `sha256` and
//! `memory-mb`. Grants stay the operator's: written only with `--grant-requested`; otherwise
//! the table to add is printed. Comments and layout of the configuration file are kept.
//!
//! Failure behaviour: nothing is written until every check has passed; the `.wasm` and the
//! configuration are each replaced atomically (a temporary file renamed into place), and the
//! new configuration is loaded before it replaces the old one, so a failed install leaves
//! both as they were. An installed file of the same name with other bytes is not replaced
//! without `--force`.

use crate::config::SophonConfig;
use crate::runtime::inspect::{self, ManifestOrigin};
use crate::runtime::{Manifest, PluginSource};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest plugin `install` downloads (a Python plugin is about 20 MB).
pub const MAX_PLUGIN_BYTES: u64 = 256 << 20;

/// What to install and where.
pub struct InstallRequest<'a> {
    /// A `.wasm` path or an `http(s)` URL.
    pub source: &'a str,
    /// The SHA-256 the bytes must have (required for a URL).
    pub sha256: Option<&'a str>,
    /// Write the manifest's requests as the plugin's grants.
    pub grant_requested: bool,
    /// Replace an installed file of the same name and version with other bytes.
    pub force: bool,
    /// The configuration file to register the plugin in (created if absent).
    pub config: &'a Path,
}

/// What `install` did.
#[derive(Debug)]
pub struct Installed {
    pub manifest: Manifest,
    pub sha256: String,
    /// The installed `.wasm`.
    pub path: PathBuf,
    /// Whether the plugin now has grants in the configuration.
    pub granted: bool,
}

/// Install `request.source`; see the module documentation.
pub async fn install(request: &InstallRequest<'_>) -> anyhow::Result<Installed> {
    let source = fetch(request.source, request.sha256.is_some()).await?;
    let sha256 = source.sha256();
    if let Some(expected) = request.sha256
        && !expected.trim().eq_ignore_ascii_case(&sha256)
    {
        bail!(
            "{} has SHA-256 {sha256}, not the {} expected: the file is not the one published; \
             get it again from its publisher, and do not install it",
            request.source,
            expected.trim()
        );
    }
    let described = inspect::describe(&source)?;
    let manifest = match described.manifest {
        Some(Ok(manifest)) => manifest,
        Some(Err(e)) => bail!("{} has an invalid manifest: {e}", request.source),
        None => bail!(
            "{} carries no manifest: build it with `sophon plugin build` (or the Rust SDK's \
             export macro), which embeds plugin.toml",
            request.source
        ),
    };
    let stem = format!("{}-{}", manifest.plugin.name, manifest.plugin.version);
    let relative = format!("plugins/{stem}.wasm");
    let path = config_dir(request.config).join(&relative);
    let (new_config, granted) = registered(request, &manifest, &relative, &sha256)?;
    let sidecar = match described.manifest_origin {
        ManifestOrigin::Sidecar => source.sidecar_manifest.as_deref(),
        _ => None,
    };
    let staged = stage_config(request.config, &new_config)?;
    place(&path, &source.wasm, request.force)?;
    if let Some(manifest_bytes) = sidecar {
        place(&path.with_extension("plugin.toml"), manifest_bytes, true)?;
    }
    staged
        .persist(request.config)
        .with_context(|| format!("writing {}", request.config.display()))?;
    Ok(Installed {
        manifest,
        sha256,
        path,
        granted,
    })
}

/// The bytes at `source`: a file (with its sidecar manifest), or a download.
async fn fetch(source: &str, pinned: bool) -> anyhow::Result<PluginSource> {
    if !(source.starts_with("https://") || source.starts_with("http://")) {
        return Ok(PluginSource::from_file(Path::new(source))?);
    }
    if !pinned {
        bail!(
            "a plugin from a URL is installed only with its hash pinned: pass --sha256 <hex>, \
             the SHA-256 its publisher gives (a download is not trusted on its own)"
        );
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut response = client
        .get(source)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("downloading {source}"))?;
    if response.content_length().unwrap_or(0) > MAX_PLUGIN_BYTES {
        bail!("{source} is over the {MAX_PLUGIN_BYTES}-byte limit for a plugin");
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("downloading {source}"))?
    {
        if (bytes.len() + chunk.len()) as u64 > MAX_PLUGIN_BYTES {
            bail!("{source} is over the {MAX_PLUGIN_BYTES}-byte limit for a plugin");
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(PluginSource::from_bytes(source, bytes))
}

/// The directory of the configuration file at `path` (`.` for a bare file name).
fn config_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The configuration text with `[plugins.<name>]` pointing at the installed file, and
/// whether that table has grants: its grants kept, or replaced by the manifest's requests
/// with `grant_requested`.
fn registered(
    request: &InstallRequest<'_>,
    manifest: &Manifest,
    relative: &str,
    sha256: &str,
) -> anyhow::Result<(String, bool)> {
    let text = match std::fs::read_to_string(request.config) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", request.config.display())),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", request.config.display()))?;
    let plugins = doc
        .entry("plugins")
        .or_insert_with(|| {
            let mut table = toml_edit::Table::new();
            table.set_implicit(true);
            toml_edit::Item::Table(table)
        })
        .as_table_mut()
        .with_context(|| format!("`plugins` in {} is not a table", request.config.display()))?;
    let entry = plugins
        .entry(&manifest.plugin.name)
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .with_context(|| format!("`plugins.{}` is not a table", manifest.plugin.name))?;
    entry["source"] = toml_edit::value(relative);
    entry["sha256"] = toml_edit::value(sha256);
    match manifest.limits.memory_mb {
        Some(mb) => entry["memory-mb"] = toml_edit::value(mb as i64),
        None => {
            entry.remove("memory-mb");
        }
    }
    if request.grant_requested {
        let requested: toml_edit::DocumentMut = toml::to_string(&manifest.capabilities)?
            .parse()
            .context("the manifest's capabilities as TOML")?;
        let mut grants = requested.as_table().clone();
        grants.set_implicit(false);
        entry["grants"] = toml_edit::Item::Table(grants);
    }
    let granted = entry.get("grants").is_some_and(|g| !g.is_none());
    Ok((doc.to_string(), granted))
}

/// Write `bytes` to `path` atomically; an existing file with other bytes only with `replace`.
fn place(path: &Path, bytes: &[u8], replace: bool) -> anyhow::Result<()> {
    if let Ok(existing) = std::fs::read(path)
        && existing != bytes
        && !replace
    {
        bail!(
            "{} is already installed with other bytes (same name and version): bump the \
             plugin's version, or pass --force to replace it",
            path.display()
        );
    }
    let dir = path.parent().expect("an installed file has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing into {}", dir.display()))?;
    file.write_all(bytes)?;
    // Temporary files are private (0600); an installed plugin is readable by whichever
    // account runs Sophon (root may install for a user).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    file.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `text` in a temporary file beside the configuration at `path`, checked to load as a
/// configuration; persisting it replaces the configuration atomically.
fn stage_config(path: &Path, text: &str) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = config_dir(path);
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile_in(dir)
        .with_context(|| format!("writing into {}", dir.display()))?;
    file.write_all(text.as_bytes())?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(file.path(), meta.permissions())?;
    }
    SophonConfig::load(file.path()).with_context(|| {
        format!(
            "{} would no longer load after the install (nothing was changed)",
            path.display()
        )
    })?;
    Ok(file)
}
