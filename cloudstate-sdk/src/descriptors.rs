//! The descriptor set handed to the proxy at discovery: merged from every
//! registered set, de-duplicated by file name and checked for completeness.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use prost::Message;
use prost_types::FileDescriptorProto;

use crate::Error;

/// A method as the runtime needs it: its name and its message types.
#[derive(Debug, Clone)]
pub(crate) struct MethodInfo {
    /// Full name of the input type, without the leading dot.
    pub(crate) input_type: String,
    /// Full name of the output type, without the leading dot.
    pub(crate) output_type: String,
    pub(crate) client_streaming: bool,
    pub(crate) server_streaming: bool,
}

/// A service's methods by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceInfo {
    pub(crate) methods: HashMap<String, MethodInfo, BuildHasherDefault<NameHasher>>,
}

/// FNV-1a, for the method table every command is looked up in: a few short
/// keys, fixed when the server starts, so SipHash's resistance to chosen
/// collisions buys nothing there and costs more than the rest of the lookup.
#[derive(Debug)]
pub(crate) struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Files are kept as the bytes they arrived in: prost's descriptor types drop
/// extension options (`entity_key`, `google.api.http`, `eventing`), which the
/// proxy reads, so the set sent on is re-assembled from the original bytes and
/// the decoded form is only used to look things up.
#[derive(Debug, Default)]
pub(crate) struct Descriptors {
    files: Vec<FileDescriptorProto>,
    raw: Vec<Vec<u8>>,
    names: HashSet<String>,
}

impl Descriptors {
    /// Adds the files of a serialized `FileDescriptorSet`; a file already present
    /// (by name) is kept once.
    pub(crate) fn add_encoded(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let invalid =
            |e: String| Error::Descriptors(format!("not a serialized FileDescriptorSet: {e}"));
        for raw in raw_files(bytes).map_err(invalid)? {
            let file = FileDescriptorProto::decode(raw).map_err(|e| invalid(e.to_string()))?;
            if self.names.insert(file.name().to_owned()) {
                self.files.push(file);
                self.raw.push(raw.to_vec());
            }
        }
        Ok(())
    }

    /// Checks that every import of every file is in the set, as the proxy needs
    /// them all to build the descriptors.
    pub(crate) fn check_complete(&self) -> Result<(), Error> {
        for file in &self.files {
            for dep in &file.dependency {
                if !self.names.contains(dep) {
                    return Err(Error::Descriptors(format!(
                        "file [{}] imports [{dep}], which is not in the descriptor set; \
                         build the set with all imports included",
                        file.name()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Looks up a service by its fully qualified name.
    pub(crate) fn service(&self, full_name: &str) -> Option<ServiceInfo> {
        let (package, name) = full_name.rsplit_once('.').unwrap_or(("", full_name));
        let file = self
            .files
            .iter()
            .find(|f| f.package() == package && f.service.iter().any(|s| s.name() == name))?;
        let service = file.service.iter().find(|s| s.name() == name)?;
        let methods = service
            .method
            .iter()
            .map(|m| {
                let info = MethodInfo {
                    input_type: m.input_type().trim_start_matches('.').to_owned(),
                    output_type: m.output_type().trim_start_matches('.').to_owned(),
                    client_streaming: m.client_streaming(),
                    server_streaming: m.server_streaming(),
                };
                (m.name().to_owned(), info)
            })
            .collect();
        Some(ServiceInfo { methods })
    }

    /// The merged set, serialized.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.iter().map(|f| f.len() + 6).sum());
        for file in &self.raw {
            prost::encoding::bytes::encode(1, file, &mut out);
        }
        out
    }
}

/// The undecoded `file` entries (field 1) of a serialized `FileDescriptorSet`.
fn raw_files(mut buf: &[u8]) -> Result<Vec<&[u8]>, String> {
    use prost::encoding::{WireType, decode_key, decode_varint, skip_field};
    let mut files = Vec::new();
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(|e| e.to_string())?;
        if tag == 1 && wire_type == WireType::LengthDelimited {
            let len = decode_varint(&mut buf).map_err(|e| e.to_string())?;
            let len = usize::try_from(len).map_err(|_| "length overflow".to_owned())?;
            if len > buf.len() {
                return Err("truncated file entry".to_owned());
            }
            let (file, rest) = buf.split_at(len);
            files.push(file);
            buf = rest;
        } else {
            skip_field(
                wire_type,
                tag,
                &mut buf,
                prost::encoding::DecodeContext::default(),
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::FileDescriptorSet;

    /// A field option the decoded descriptor types know nothing about
    /// survives the merge byte for byte.
    #[test]
    fn merge_keeps_unknown_options_and_deduplicates() {
        let file = FileDescriptorProto {
            name: Some("a.proto".into()),
            package: Some("a".into()),
            ..Default::default()
        };
        let mut raw = file.encode_to_vec();
        // FileDescriptorProto.options (8) holding an unknown extension 1080 = true.
        raw.extend_from_slice(&[0x42, 0x03, 0xc0, 0x43, 0x01]);
        let mut set = Vec::new();
        prost::encoding::bytes::encode(1, &raw, &mut set);
        let mut d = Descriptors::default();
        d.add_encoded(&set).unwrap();
        d.add_encoded(&set).unwrap();
        assert_eq!(d.encode(), set);
        let decoded = FileDescriptorSet::decode(d.encode().as_slice()).unwrap();
        assert_eq!(decoded.file.len(), 1);
    }
}
