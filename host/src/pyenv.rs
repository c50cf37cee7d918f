//! Private Python environments that Sophon installs for itself: a venv under its data
//! directory with pinned packages from PyPI, created once and reused.
//!
//! Installation is guarded by a file lock next to the environment, so concurrent Sophon
//! processes install once; a marker file lists the pinned packages, so a changed pin
//! reinstalls. Failure is an error that names what failed and how to fix it; a half-installed
//! environment is never marked ready.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// Why a Python environment could not be installed or used. Every variant names the file or
/// command concerned; the underlying error is the source.
#[derive(Debug, thiserror::Error)]
pub enum PyenvError {
    /// The venv's interpreter could not be started.
    #[error("running {}: {source}", python.display())]
    Spawn {
        python: PathBuf,
        source: std::io::Error,
    },
    /// The venv's interpreter starts but fails: the environment is broken.
    #[error("{} does not run: remove {} to reinstall", python.display(), root.display())]
    Broken { python: PathBuf, root: PathBuf },
    /// A directory or the lock file could not be created.
    #[error("creating {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The install lock could not be taken.
    #[error("locking {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A setup command (`venv`, `pip install`) could not be started.
    #[error("{what}: {source}")]
    Start {
        what: String,
        source: std::io::Error,
    },
    /// A setup command failed; `tail` is the end of its stderr.
    #[error("{what} failed ({status}):\n{tail}")]
    Failed {
        what: String,
        status: ExitStatus,
        tail: String,
    },
    /// The ready marker could not be written.
    #[error("writing {}: {source}", path.display())]
    Mark {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One pinned package, optionally installed without its dependencies.
#[derive(Clone, Copy, Debug)]
pub struct Package {
    pub requirement: &'static str,
    pub no_deps: bool,
}

impl Package {
    pub const fn new(requirement: &'static str) -> Package {
        Package {
            requirement,
            no_deps: false,
        }
    }

    pub const fn no_deps(requirement: &'static str) -> Package {
        Package {
            requirement,
            no_deps: true,
        }
    }
}

/// A venv at `root` holding `packages`.
#[derive(Clone, Debug)]
pub struct Venv {
    root: PathBuf,
}

impl Venv {
    /// Sophon's data directory for environments: `$SOPHON_DATA_DIR`, else
    /// `~/.local/share/sophon`.
    pub fn data_dir() -> PathBuf {
        std::env::var_os("SOPHON_DATA_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::data_dir().map(|d| d.join("sophon")))
            .unwrap_or_else(|| PathBuf::from(".sophon"))
    }

    /// The environment at `root`, installing `packages` with `python` first if needed
    /// (minutes, once). `what` names the environment in messages.
    pub fn ensure(
        root: &Path,
        python: &str,
        packages: &[Package],
        what: &str,
    ) -> Result<Venv, PyenvError> {
        install(root, python, packages, what)?;
        Ok(Venv {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn python(&self) -> PathBuf {
        self.root.join("bin").join("python")
    }

    /// The interpreter installation the venv was made from (`sys.base_prefix`): a sandbox that
    /// runs the venv must see it too.
    pub fn base_prefix(&self) -> Result<PathBuf, PyenvError> {
        let output = Command::new(self.python())
            .args(["-c", "import sys; print(sys.base_prefix)"])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| PyenvError::Spawn {
                python: self.python(),
                source,
            })?;
        if !output.status.success() {
            return Err(PyenvError::Broken {
                python: self.python(),
                root: self.root.clone(),
            });
        }
        Ok(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim().to_string(),
        ))
    }
}

/// Install the environment unless it is complete (marked by `.sophon-ready`).
fn install(root: &Path, python: &str, packages: &[Package], what: &str) -> Result<(), PyenvError> {
    let marker = root.join(".sophon-ready");
    let wanted: String = packages
        .iter()
        .map(|p| format!("{}\n", p.requirement))
        .collect();
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(());
    }
    if let Some(parent) = root.parent() {
        std::fs::create_dir_all(parent).map_err(|source| PyenvError::Create {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let lock_path = root.with_extension("lock");
    let lock = std::fs::File::create(&lock_path).map_err(|source| PyenvError::Create {
        path: lock_path.clone(),
        source,
    })?;
    lock.lock().map_err(|source| PyenvError::Lock {
        path: lock_path.clone(),
        source,
    })?;
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(());
    }
    let list = wanted.trim_end().replace('\n', ", ");
    tracing::info!(env = %root.display(), "installing {what} ({list}); this happens once");
    let mut venv = Command::new(python);
    venv.args(["-m", "venv", "--clear"]).arg(root);
    run(&mut venv, || {
        format!(
            "creating a Python venv with `{python} -m venv`: install Python 3 with its venv module (Debian: python3-venv)"
        )
    })?;
    let pip = root.join("bin").join("pip");
    for with_deps in [true, false] {
        let batch: Vec<&str> = packages
            .iter()
            .filter(|p| p.no_deps != with_deps)
            .map(|p| p.requirement)
            .collect();
        if batch.is_empty() {
            continue;
        }
        let mut install = Command::new(&pip);
        install
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args((!with_deps).then_some("--no-deps"))
            .args(&batch);
        run(&mut install, || {
            format!("installing {} from PyPI", batch.join(" "))
        })?;
    }
    std::fs::write(&marker, wanted).map_err(|source| PyenvError::Mark {
        path: marker.clone(),
        source,
    })
}

/// Run a setup command to completion, turning failure into an error that says what failed.
fn run(command: &mut Command, what: impl Fn() -> String) -> Result<(), PyenvError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PyenvError::Start {
            what: what(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let skip = stderr.chars().count().saturating_sub(1500);
    let tail: String = stderr.chars().skip(skip).collect();
    Err(PyenvError::Failed {
        what: what(),
        status: output.status,
        tail,
    })
}
