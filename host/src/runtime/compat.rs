//! Serving earlier `sophon:host` contracts: a plugin built against a frozen earlier version
//! (`wit/since_v*/`) imports `sophon:host/<interface>@<old>`; the linker defines only the
//! current version. Every contract after the first only adds to the one before (each addition
//! marked `@since`, checked against the frozen snapshot by `tests/all/wit_evolution.rs`), so an
//! old import is a subset of the current interface, and renaming the component's top-level
//! import to the current version is all it takes to link it. Wasmtime still type-checks every
//! function the plugin imports against the current definitions when it links, so a rename
//! never makes a wrong import link.
//!
//! Only top-level import names change: nested modules and components, exports and custom
//! sections are copied byte for byte.

use super::bindings::{CURRENT_HOST_VERSION, serves_host_version};
use std::borrow::Cow;
use wasmparser::{Chunk, Parser, Payload};

/// What made a component unreadable while renaming its imports.
#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    #[error("malformed component: {0}")]
    Malformed(#[from] wasmparser::BinaryReaderError),
    #[error("malformed component: a nested module or component runs past the end of the file")]
    Truncated,
    #[error("malformed component: import at byte {offset} has an unknown name encoding")]
    ImportName { offset: usize },
}

/// `wasm` with every top-level import of an earlier served `sophon:host` version renamed to
/// [`CURRENT_HOST_VERSION`]; borrowed unchanged when there is none. Imports of versions the
/// host does not serve are left as they are, for the grant check to refuse by name.
pub fn serve_current(wasm: &[u8]) -> Result<Cow<'_, [u8]>, CompatError> {
    let sections = import_sections(wasm)?;
    let mut out: Option<Vec<u8>> = None;
    let mut copied_to = 0;
    for section in &sections {
        let Some(renamed) = renamed_section(wasm, section)? else {
            continue;
        };
        let out = out.get_or_insert_with(|| Vec::with_capacity(wasm.len() + 64));
        out.extend_from_slice(&wasm[copied_to..section.start]);
        out.extend_from_slice(&renamed);
        copied_to = section.end;
    }
    Ok(match out {
        None => Cow::Borrowed(wasm),
        Some(mut out) => {
            out.extend_from_slice(&wasm[copied_to..]);
            Cow::Owned(out)
        }
    })
}

/// The new name of a top-level import, if it is an earlier served `sophon:host` version.
pub fn current_name(import: &str) -> Option<String> {
    let rest = import.strip_prefix("sophon:host/")?;
    let (interface, version) = rest.split_once('@')?;
    (version != CURRENT_HOST_VERSION && serves_host_version(version))
        .then(|| format!("sophon:host/{interface}@{CURRENT_HOST_VERSION}"))
}

/// A top-level component import section: its byte range (header included), its section id,
/// and the byte range of each import entry.
struct ImportSection {
    start: usize,
    end: usize,
    id: u8,
    items: Vec<(usize, usize)>,
}

/// The top-level import sections of the component `wasm`, in file order.
fn import_sections(wasm: &[u8]) -> Result<Vec<ImportSection>, CompatError> {
    let mut parser = Parser::new(0);
    let mut offset = 0;
    let mut sections = Vec::new();
    loop {
        let rest = wasm.get(offset..).ok_or(CompatError::Truncated)?;
        let Chunk::Parsed { consumed, payload } = parser.parse(rest, true)? else {
            unreachable!("the whole component is in memory");
        };
        let start = offset;
        offset += consumed;
        match payload {
            Payload::ComponentImportSection(reader) => {
                let end = reader.range().end;
                let mut starts = Vec::new();
                for item in reader.clone().into_iter_with_offsets() {
                    starts.push(item?.0);
                }
                let ends = starts.iter().skip(1).copied().chain([end]);
                let items = starts.iter().copied().zip(ends).collect();
                sections.push(ImportSection {
                    start,
                    end,
                    id: wasm[start],
                    items,
                });
            }
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => {
                // The parser has already stepped over the nested binary; the slice must too.
                offset += unchecked_range.len();
            }
            Payload::End(_) => return Ok(sections),
            _ => {}
        }
    }
}

/// `section` re-encoded with its `sophon:host` imports renamed, or `None` if none needs it.
fn renamed_section(wasm: &[u8], section: &ImportSection) -> Result<Option<Vec<u8>>, CompatError> {
    let mut body = Vec::new();
    write_leb128(&mut body, section.items.len() as u64);
    let mut changed = false;
    for &(start, end) in &section.items {
        let item = &wasm[start..end];
        // importname' ::= (0x00 | 0x01) len:<u32> name:<bytes> ...; the rest (a version
        // suffix where 0x01, then the extern descriptor) is copied as it is.
        let (&kind, after_kind) = item
            .split_first()
            .filter(|(kind, _)| **kind <= 0x01)
            .ok_or(CompatError::ImportName { offset: start })?;
        let (len, leb_len) =
            read_leb128(after_kind).ok_or(CompatError::ImportName { offset: start })?;
        let name_start = 1 + leb_len;
        let name = item
            .get(name_start..name_start + len as usize)
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or(CompatError::ImportName { offset: start })?;
        let rest = &item[name_start + len as usize..];
        match current_name(name) {
            Some(new_name) => {
                changed = true;
                body.push(kind);
                write_leb128(&mut body, new_name.len() as u64);
                body.extend_from_slice(new_name.as_bytes());
                body.extend_from_slice(rest);
            }
            None => body.extend_from_slice(item),
        }
    }
    if !changed {
        return Ok(None);
    }
    let mut out = vec![section.id];
    write_leb128(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    Ok(Some(out))
}

/// An unsigned LEB128 `u32` at the start of `bytes`: (value, bytes it took).
fn read_leb128(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(value).ok().map(|v| (v, i + 1));
        }
    }
    None
}

/// Append `value` as unsigned LEB128 (shortest form), as wasm encodes sizes and counts.
pub fn write_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_earlier_served_versions_are_renamed() {
        assert_eq!(
            current_name("sophon:host/llm@0.1.0").as_deref(),
            Some("sophon:host/llm@0.2.0")
        );
        for unchanged in [
            "sophon:host/llm@0.2.0",
            "sophon:host/llm@0.1.9",
            "sophon:host/llm@0.3.0",
            "sophon:host/llm",
            "wasi:io/poll@0.2.0",
            "sophon:hostile/llm@0.1.0",
        ] {
            assert_eq!(current_name(unchanged), None, "{unchanged}");
        }
    }

    #[test]
    fn leb_round_trips() {
        for value in [0u32, 1, 127, 128, 300, 16_384, u32::MAX] {
            let mut bytes = Vec::new();
            write_leb128(&mut bytes, value.into());
            assert_eq!(read_leb128(&bytes), Some((value, bytes.len())));
        }
        assert_eq!(read_leb128(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(serve_current(b"\0asm\x0d\0\x01\0\x0a\xff").is_err());
        assert!(serve_current(b"not wasm").is_err());
        // A nested module section that claims more bytes than the file has.
        assert!(serve_current(b"\0asm\x0d\0\x01\0\x01\x7f\0asm").is_err());
    }
}
