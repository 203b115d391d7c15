//! The descriptor set handed to the proxy at discovery: merged from every
//! registered set, de-duplicated by file name and checked for completeness.

use std::collections::{HashMap, HashSet};

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

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
    pub(crate) methods: HashMap<String, MethodInfo>,
}

#[derive(Debug, Default)]
pub(crate) struct Descriptors {
    files: Vec<FileDescriptorProto>,
    names: HashSet<String>,
}

impl Descriptors {
    /// Adds the files of a serialized `FileDescriptorSet`; a file already present
    /// (by name) is kept once.
    pub(crate) fn add_encoded(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let set = FileDescriptorSet::decode(bytes)
            .map_err(|e| Error::Descriptors(format!("not a serialized FileDescriptorSet: {e}")))?;
        for file in set.file {
            if self.names.insert(file.name().to_owned()) {
                self.files.push(file);
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
        let file = self.files.iter().find(|f| {
            f.package() == package && f.service.iter().any(|s| s.name() == name)
        })?;
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
        FileDescriptorSet {
            file: self.files.clone(),
        }
        .encode_to_vec()
    }
}
