//! Reading and validating `google.api.http` rules (the official `HttpEndpoint.extractAndValidate`).

use http::Method;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};

use super::template::PathTemplate;

/// The full name of the `google.api.http` extension of `google.protobuf.MethodOptions`.
const HTTP_EXTENSION: &str = "google.api.http";
/// Its field number, checked to make sure the name really is the annotation.
const HTTP_EXTENSION_NUMBER: u32 = 72_295_728;
/// Output type whose replies are sent raw rather than as JSON.
pub(super) const HTTP_BODY: &str = "google.api.HttpBody";

/// Where the request body goes.
#[derive(Debug, Clone)]
pub(super) enum Body {
    /// `body: ""`: no body; query parameters and path variables only.
    Empty,
    /// `body: "*"`: the whole input message.
    All,
    /// `body: "<field>"`: one non-repeated message field of the input.
    Field(FieldDescriptor),
}

/// One compiled binding (a rule or one of its additional bindings).
#[derive(Debug, Clone)]
pub(super) struct Rule {
    /// The gRPC method the binding calls.
    pub(super) method: MethodDescriptor,
    /// `None` for `custom` with kind `*` (any HTTP method).
    pub(super) verb: Option<Method>,
    pub(super) template: PathTemplate,
    /// The input field of each path variable, in capture order.
    pub(super) variables: Vec<FieldDescriptor>,
    pub(super) body: Body,
    pub(super) response_body: Option<FieldDescriptor>,
    /// Human-readable form, for logs and error messages.
    pub(super) description: String,
}

impl Rule {
    /// Whether the output type is `google.api.HttpBody`.
    pub(super) fn http_body_output(&self) -> bool {
        self.method.output().full_name() == HTTP_BODY
    }
}

/// Compiles the bindings of every method of `services`, in declaration order.
pub(super) fn compile(pool: &DescriptorPool, services: &[&str]) -> Result<Vec<Rule>, String> {
    let extension = pool.get_extension_by_name(HTTP_EXTENSION);
    if let Some(ext) = &extension
        && (ext.number() != HTTP_EXTENSION_NUMBER
            || ext.containing_message().full_name() != "google.protobuf.MethodOptions")
    {
        return Err(format!(
            "HTTP API config: extension {HTTP_EXTENSION} is not field {HTTP_EXTENSION_NUMBER} of google.protobuf.MethodOptions"
        ));
    }
    let mut rules = Vec::new();
    for &name in services {
        let service = pool
            .get_service_by_name(name)
            .ok_or_else(|| format!("HTTP API config: service {name} is not in the descriptors"))?;
        for method in service.methods() {
            let options = method.options();
            let configured = extension
                .as_ref()
                .filter(|ext| options.has_extension(ext))
                .map(|ext| options.get_extension(ext).into_owned());
            match configured {
                Some(Value::Message(rule)) => {
                    let top = read(&rule);
                    let at = |rule: &RawRule| {
                        format!(
                            "HTTP API config: service {}, method {}, rule {}",
                            service.full_name(),
                            method.name(),
                            rule.describe()
                        )
                    };
                    if top
                        .additional_bindings
                        .iter()
                        .any(|b| !b.additional_bindings.is_empty())
                    {
                        return Err(format!(
                            "{}: only one level of additional_bindings is supported",
                            at(&top)
                        ));
                    }
                    for binding in std::iter::once(&top).chain(&top.additional_bindings) {
                        let rule = compile_binding(&method, binding)
                            .map_err(|problem| format!("{}: {problem}", at(binding)))?;
                        rules.push(rule);
                    }
                }
                Some(other) => {
                    return Err(format!(
                        "HTTP API config: service {}, method {}: option {HTTP_EXTENSION} is not a message: {other:?}",
                        service.full_name(),
                        method.name()
                    ));
                }
                None => {
                    let generic = RawRule {
                        selector: method.full_name().to_owned(),
                        pattern: Some(Pattern::Post(format!(
                            "/{}/{}",
                            service.full_name(),
                            method.name()
                        ))),
                        body: "*".to_owned(),
                        response_body: String::new(),
                        additional_bindings: Vec::new(),
                    };
                    let rule = compile_binding(&method, &generic).map_err(|problem| {
                        format!(
                            "HTTP API config: service {}, method {}, generated rule {}: {problem}",
                            service.full_name(),
                            method.name(),
                            generic.describe()
                        )
                    })?;
                    rules.push(rule);
                }
            }
        }
    }
    Ok(rules)
}

/// The pattern of a rule as written.
#[derive(Debug)]
enum Pattern {
    Get(String),
    Put(String),
    Post(String),
    Delete(String),
    Patch(String),
    Custom { kind: String, path: String },
}

/// A `google.api.HttpRule` as written.
#[derive(Debug)]
struct RawRule {
    selector: String,
    pattern: Option<Pattern>,
    body: String,
    response_body: String,
    additional_bindings: Vec<RawRule>,
}

impl RawRule {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.selector.is_empty() {
            parts.push(format!("selector: {:?}", self.selector));
        }
        match &self.pattern {
            Some(Pattern::Get(p)) => parts.push(format!("get: {p:?}")),
            Some(Pattern::Put(p)) => parts.push(format!("put: {p:?}")),
            Some(Pattern::Post(p)) => parts.push(format!("post: {p:?}")),
            Some(Pattern::Delete(p)) => parts.push(format!("delete: {p:?}")),
            Some(Pattern::Patch(p)) => parts.push(format!("patch: {p:?}")),
            Some(Pattern::Custom { kind, path }) => {
                parts.push(format!("custom: {{kind: {kind:?}, path: {path:?}}}"));
            }
            None => {}
        }
        if !self.body.is_empty() {
            parts.push(format!("body: {:?}", self.body));
        }
        if !self.response_body.is_empty() {
            parts.push(format!("response_body: {:?}", self.response_body));
        }
        if !self.additional_bindings.is_empty() {
            parts.push(format!(
                "additional_bindings: [{}]",
                self.additional_bindings
                    .iter()
                    .map(RawRule::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        format!("{{{}}}", parts.join(", "))
    }
}

fn read(rule: &DynamicMessage) -> RawRule {
    let string = |name: &str| {
        rule.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let set = |name: &str| rule.has_field_by_name(name);
    let pattern = if set("get") {
        Some(Pattern::Get(string("get")))
    } else if set("put") {
        Some(Pattern::Put(string("put")))
    } else if set("post") {
        Some(Pattern::Post(string("post")))
    } else if set("delete") {
        Some(Pattern::Delete(string("delete")))
    } else if set("patch") {
        Some(Pattern::Patch(string("patch")))
    } else if set("custom") {
        let custom = rule.get_field_by_name("custom");
        let part = |name: &str| {
            custom
                .as_ref()
                .and_then(|c| c.as_message())
                .and_then(|c| c.get_field_by_name(name))
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        Some(Pattern::Custom {
            kind: part("kind"),
            path: part("path"),
        })
    } else {
        None
    };
    let additional_bindings = rule
        .get_field_by_name("additional_bindings")
        .and_then(|v| {
            v.as_list().map(|list| {
                list.iter()
                    .filter_map(Value::as_message)
                    .map(read)
                    .collect()
            })
        })
        .unwrap_or_default();
    RawRule {
        selector: string("selector"),
        pattern,
        body: string("body"),
        response_body: string("response_body"),
        additional_bindings,
    }
}

fn compile_binding(method: &MethodDescriptor, raw: &RawRule) -> Result<Rule, String> {
    if !raw.selector.is_empty() && raw.selector != method.full_name() {
        return Err(format!(
            "selector [{}] must be empty or [{}]",
            raw.selector,
            method.full_name()
        ));
    }
    let (verb, path) = match &raw.pattern {
        None => return Err("pattern missing (get, put, post, delete, patch or custom)".into()),
        Some(Pattern::Get(p)) => (Some(Method::GET), p),
        Some(Pattern::Put(p)) => (Some(Method::PUT), p),
        Some(Pattern::Post(p)) => (Some(Method::POST), p),
        Some(Pattern::Delete(p)) => (Some(Method::DELETE), p),
        Some(Pattern::Patch(p)) => (Some(Method::PATCH), p),
        Some(Pattern::Custom { kind, path }) => {
            if kind != "*" {
                return Err(format!(
                    "only custom patterns with kind [*] are supported, found [{kind}]"
                ));
            }
            (None, path)
        }
    };
    let template = PathTemplate::parse(path).map_err(|e| format!("bad path template: {e}"))?;
    let input = method.input();
    let variables = template
        .variables()
        .iter()
        .map(|path| path_variable(&input, path))
        .collect::<Result<Vec<_>, _>>()?;

    let body = match raw.body.as_str() {
        "" => Body::Empty,
        "*" => Body::All,
        name => {
            let field = input.get_field_by_name(name).ok_or_else(|| {
                format!(
                    "body configured to [{name}] but that field does not exist on input type [{}]",
                    input.full_name()
                )
            })?;
            if field.is_list() || field.is_map() {
                return Err(format!(
                    "body configured to [{name}] but that field is a repeated field"
                ));
            }
            if !matches!(field.kind(), Kind::Message(_)) {
                return Err(format!(
                    "body configured to [{name}] but that field is not of a message type"
                ));
            }
            Body::Field(field)
        }
    };

    let output = method.output();
    let response_body = match raw.response_body.as_str() {
        "" => None,
        name => {
            let field = output.get_field_by_name(name).ok_or_else(|| {
                format!(
                    "response body field [{name}] does not exist on type [{}]",
                    output.full_name()
                )
            })?;
            if output.full_name() == HTTP_BODY {
                return Err(format!(
                    "response body field [{name}] cannot be used with output type {HTTP_BODY}"
                ));
            }
            Some(field)
        }
    };

    let mut description = format!(
        "{} {} -> {}",
        verb.as_ref().map_or("*", Method::as_str),
        path,
        method.full_name()
    );
    if !raw.body.is_empty() {
        description.push_str(&format!(" (body {:?})", raw.body));
    }
    if !raw.response_body.is_empty() {
        description.push_str(&format!(" (response_body {:?})", raw.response_body));
    }

    Ok(Rule {
        method: method.clone(),
        verb,
        template,
        variables,
        body,
        response_body,
        description,
    })
}

/// Checks one path variable: a single, known, scalar, non-repeated, non-enum field.
fn path_variable(input: &MessageDescriptor, path: &[String]) -> Result<FieldDescriptor, String> {
    let [name] = path else {
        return Err(format!(
            "nested field paths in path variables are not supported: [{}]",
            path.join(".")
        ));
    };
    let field = input.get_field_by_name(name).ok_or_else(|| {
        format!(
            "unknown field name [{name}] in type [{}] referenced in the path template",
            input.full_name()
        )
    })?;
    if field.is_map() {
        return Err(format!(
            "map parameters [{}] are not allowed as path variables",
            field.full_name()
        ));
    }
    if field.is_list() {
        return Err(format!(
            "repeated parameters [{}] are not allowed as path variables",
            field.full_name()
        ));
    }
    match field.kind() {
        Kind::Enum(_) => Err(format!(
            "enum path parameters [{}] are not supported",
            field.full_name()
        )),
        Kind::Message(_) => Err(format!(
            "message path parameters [{}] are not supported",
            field.full_name()
        )),
        _ => Ok(field),
    }
}
