//! The protobuf well-known types (`google.protobuf.*`) of the generated
//! messages: `Timestamp`, `Duration`, `Struct`, `Any`, the descriptor types
//! and the rest, the types of the `prost-types` crate this crate uses, under
//! the same names. A crate that names them needs no `prost-types` dependency
//! of its own.
//!
//! They are type aliases rather than a re-export of the crate: rustc then
//! keeps printing `String` and `Option` in a user crate's errors, where a
//! re-exported `prost_types` (with its `Option` message and `String`
//! variants) would make it print `std::string::String`. Through an alias,
//! enum variants are written `Alias::Variant` (no `use` of the variants).

/// `google.protobuf.Any`.
pub type Any = ::prost_types::Any;
/// `google.protobuf.Api`.
pub type Api = ::prost_types::Api;
/// `google.protobuf.DescriptorProto`.
pub type DescriptorProto = ::prost_types::DescriptorProto;
/// `google.protobuf.Duration`.
pub type Duration = ::prost_types::Duration;
/// The error of converting a `Duration` (prost-types).
pub type DurationError = ::prost_types::DurationError;
/// `google.protobuf.Enum`.
pub type Enum = ::prost_types::Enum;
/// `google.protobuf.EnumDescriptorProto`.
pub type EnumDescriptorProto = ::prost_types::EnumDescriptorProto;
/// `google.protobuf.EnumOptions`.
pub type EnumOptions = ::prost_types::EnumOptions;
/// `google.protobuf.EnumValue`.
pub type EnumValue = ::prost_types::EnumValue;
/// `google.protobuf.EnumValueDescriptorProto`.
pub type EnumValueDescriptorProto = ::prost_types::EnumValueDescriptorProto;
/// `google.protobuf.EnumValueOptions`.
pub type EnumValueOptions = ::prost_types::EnumValueOptions;
/// `google.protobuf.ExtensionRangeOptions`.
pub type ExtensionRangeOptions = ::prost_types::ExtensionRangeOptions;
/// `google.protobuf.Field`.
pub type Field = ::prost_types::Field;
/// `google.protobuf.FieldDescriptorProto`.
pub type FieldDescriptorProto = ::prost_types::FieldDescriptorProto;
/// `google.protobuf.FieldMask`.
pub type FieldMask = ::prost_types::FieldMask;
/// `google.protobuf.FieldOptions`.
pub type FieldOptions = ::prost_types::FieldOptions;
/// `google.protobuf.FileDescriptorProto`.
pub type FileDescriptorProto = ::prost_types::FileDescriptorProto;
/// `google.protobuf.FileDescriptorSet`.
pub type FileDescriptorSet = ::prost_types::FileDescriptorSet;
/// `google.protobuf.FileOptions`.
pub type FileOptions = ::prost_types::FileOptions;
/// `google.protobuf.GeneratedCodeInfo`.
pub type GeneratedCodeInfo = ::prost_types::GeneratedCodeInfo;
/// `google.protobuf.ListValue`.
pub type ListValue = ::prost_types::ListValue;
/// `google.protobuf.MessageOptions`.
pub type MessageOptions = ::prost_types::MessageOptions;
/// `google.protobuf.Method`.
pub type Method = ::prost_types::Method;
/// `google.protobuf.MethodDescriptorProto`.
pub type MethodDescriptorProto = ::prost_types::MethodDescriptorProto;
/// `google.protobuf.MethodOptions`.
pub type MethodOptions = ::prost_types::MethodOptions;
/// `google.protobuf.Mixin`.
pub type Mixin = ::prost_types::Mixin;
/// `google.protobuf.NullValue`.
pub type NullValue = ::prost_types::NullValue;
/// `google.protobuf.OneofDescriptorProto`.
pub type OneofDescriptorProto = ::prost_types::OneofDescriptorProto;
/// `google.protobuf.OneofOptions`.
pub type OneofOptions = ::prost_types::OneofOptions;
/// The `google.protobuf.Option` message of `type.proto`, not `core::option::Option`.
pub type Option = ::prost_types::Option;
/// `google.protobuf.ServiceDescriptorProto`.
pub type ServiceDescriptorProto = ::prost_types::ServiceDescriptorProto;
/// `google.protobuf.ServiceOptions`.
pub type ServiceOptions = ::prost_types::ServiceOptions;
/// `google.protobuf.SourceCodeInfo`.
pub type SourceCodeInfo = ::prost_types::SourceCodeInfo;
/// `google.protobuf.SourceContext`.
pub type SourceContext = ::prost_types::SourceContext;
/// `google.protobuf.Struct`.
pub type Struct = ::prost_types::Struct;
/// `google.protobuf.Syntax`.
pub type Syntax = ::prost_types::Syntax;
/// `google.protobuf.Timestamp`.
pub type Timestamp = ::prost_types::Timestamp;
/// The error of converting a `Timestamp` (prost-types).
pub type TimestampError = ::prost_types::TimestampError;
/// `google.protobuf.Type`.
pub type Type = ::prost_types::Type;
/// `google.protobuf.UninterpretedOption`.
pub type UninterpretedOption = ::prost_types::UninterpretedOption;
/// `google.protobuf.Value`.
pub type Value = ::prost_types::Value;

/// The types nested in `google.protobuf.DescriptorProto`.
pub mod descriptor_proto {
    /// `google.protobuf.DescriptorProto.ExtensionRange`.
    pub type ExtensionRange = ::prost_types::descriptor_proto::ExtensionRange;
    /// `google.protobuf.DescriptorProto.ReservedRange`.
    pub type ReservedRange = ::prost_types::descriptor_proto::ReservedRange;
}

/// The types nested in `google.protobuf.EnumDescriptorProto`.
pub mod enum_descriptor_proto {
    /// `google.protobuf.EnumDescriptorProto.EnumReservedRange`.
    pub type EnumReservedRange = ::prost_types::enum_descriptor_proto::EnumReservedRange;
}

/// The types nested in `google.protobuf.Field`.
pub mod field {
    /// `google.protobuf.Field.Cardinality`.
    pub type Cardinality = ::prost_types::field::Cardinality;
    /// `google.protobuf.Field.Kind`.
    pub type Kind = ::prost_types::field::Kind;
}

/// The types nested in `google.protobuf.FieldDescriptorProto`.
pub mod field_descriptor_proto {
    /// `google.protobuf.FieldDescriptorProto.Label`.
    pub type Label = ::prost_types::field_descriptor_proto::Label;
    /// `google.protobuf.FieldDescriptorProto.Type`.
    pub type Type = ::prost_types::field_descriptor_proto::Type;
}

/// The types nested in `google.protobuf.FieldOptions`.
pub mod field_options {
    /// `google.protobuf.FieldOptions.CType`.
    pub type CType = ::prost_types::field_options::CType;
    /// `google.protobuf.FieldOptions.JsType`.
    pub type JsType = ::prost_types::field_options::JsType;
}

/// The types nested in `google.protobuf.FileOptions`.
pub mod file_options {
    /// `google.protobuf.FileOptions.OptimizeMode`.
    pub type OptimizeMode = ::prost_types::file_options::OptimizeMode;
}

/// The types nested in `google.protobuf.GeneratedCodeInfo`.
pub mod generated_code_info {
    /// `google.protobuf.GeneratedCodeInfo.Annotation`.
    pub type Annotation = ::prost_types::generated_code_info::Annotation;
}

/// The types nested in `google.protobuf.MethodOptions`.
pub mod method_options {
    /// `google.protobuf.MethodOptions.IdempotencyLevel`.
    pub type IdempotencyLevel = ::prost_types::method_options::IdempotencyLevel;
}

/// The types nested in `google.protobuf.SourceCodeInfo`.
pub mod source_code_info {
    /// `google.protobuf.SourceCodeInfo.Location`.
    pub type Location = ::prost_types::source_code_info::Location;
}

/// The types nested in `google.protobuf.UninterpretedOption`.
pub mod uninterpreted_option {
    /// `google.protobuf.UninterpretedOption.NamePart`.
    pub type NamePart = ::prost_types::uninterpreted_option::NamePart;
}

/// The types nested in `google.protobuf.Value`.
pub mod value {
    /// `google.protobuf.Value.Kind`.
    pub type Kind = ::prost_types::value::Kind;
}

/// `google/protobuf/compiler/plugin.proto`.
pub mod compiler {
    /// `google.protobuf.compiler.CodeGeneratorRequest`.
    pub type CodeGeneratorRequest = ::prost_types::compiler::CodeGeneratorRequest;
    /// `google.protobuf.compiler.CodeGeneratorResponse`.
    pub type CodeGeneratorResponse = ::prost_types::compiler::CodeGeneratorResponse;
    /// `google.protobuf.compiler.Version`.
    pub type Version = ::prost_types::compiler::Version;

    /// The types nested in `google.protobuf.compiler.CodeGeneratorResponse`.
    pub mod code_generator_response {
        /// `google.protobuf.compiler.CodeGeneratorResponse.Feature`.
        pub type Feature = ::prost_types::compiler::code_generator_response::Feature;
        /// `google.protobuf.compiler.CodeGeneratorResponse.File`.
        pub type File = ::prost_types::compiler::code_generator_response::File;
    }
}
