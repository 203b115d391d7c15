//! The `google.api.http` path template grammar, compiled to a regular expression the way the
//! official proxy's `PathTemplateParser` does it.
//!
//! ```text
//! Template = "/" Segments [ ":" Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "**" | "*" | Variable | Literal ;     (a literal may be empty)
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = Ident { "." Ident } ;               (Ident = letter { letter | digit | "_" })
//! Verb     = Literal ;
//! ```
//!
//! A literal is any run of characters other than `*`, `{`, `}`, `/`, `:` and newline. Variables
//! must not nest, `**` may only be the last segment (counting the segments inside variables),
//! and a field path may appear only once. In the regex, `*` becomes `[^/:]*`, `**` becomes `.*`,
//! and every variable is one capture group, in template order.

use regex::Regex;

/// A parsed and compiled path template.
#[derive(Debug, Clone)]
pub(super) struct PathTemplate {
    /// Anchored regex; capture group `i + 1` is variable `i`.
    regex: Regex,
    /// What every matching path starts with (the literal segments before
    /// the first wildcard or variable): most rules are told apart by it
    /// without running the regex.
    prefix: String,
    /// The field path of each variable, in template order.
    variables: Vec<Vec<String>>,
}

impl PathTemplate {
    /// Parses `template`; the error names the problem and its position.
    pub(super) fn parse(template: &str) -> Result<Self, String> {
        let mut parser = Parser {
            chars: template.chars().collect(),
            pos: 0,
        };
        let parsed = parser.template().map_err(|(msg, at)| {
            if at >= parser.chars.len() {
                format!("{msg} at end of input of '{template}'")
            } else {
                format!("{msg} at character {} of '{template}'", at + 1)
            }
        })?;
        validate(&parsed).map_err(|msg| format!("{msg} in '{template}'"))?;

        let mut regex = String::from("^");
        to_regex(&mut regex, &parsed.segments, true);
        if let Some(verb) = &parsed.verb {
            regex.push(':');
            regex.push_str(&regex::escape(verb));
        }
        regex.push('$');
        let regex = Regex::new(&regex)
            .map_err(|e| format!("cannot compile path template '{template}': {e}"))?;
        let variables = parsed
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Variable(path, _, _) => Some(path.clone()),
                _ => None,
            })
            .collect();
        let mut prefix = String::new();
        for segment in &parsed.segments {
            prefix.push('/');
            let Segment::Literal(literal) = segment else {
                break;
            };
            prefix.push_str(literal);
        }
        Ok(PathTemplate {
            regex,
            prefix,
            variables,
        })
    }

    /// The field path of each variable, in capture order.
    pub(super) fn variables(&self) -> &[Vec<String>] {
        &self.variables
    }

    /// Matches the whole `path`; returns the raw (still percent-encoded) variable values.
    pub(super) fn captures(&self, path: &str) -> Option<Vec<String>> {
        if !path.starts_with(&self.prefix) {
            return None;
        }
        let caps = self.regex.captures(path)?;
        Some(
            (1..=self.variables.len())
                .map(|i| caps.get(i).map_or("", |m| m.as_str()).to_owned())
                .collect(),
        )
    }
}

#[derive(Debug)]
struct Template {
    segments: Vec<Segment>,
    verb: Option<String>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Single,
    /// `**`, with its position for error messages.
    Multi(usize),
    /// Field path, optional sub-template, position.
    Variable(Vec<String>, Option<Vec<Segment>>, usize),
}

type ParseError = (&'static str, usize);

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn template(&mut self) -> Result<Template, ParseError> {
        if self.peek() != Some('/') {
            return Err(("Template must start with a slash", self.pos));
        }
        self.pos += 1;
        let segments = self.segments()?;
        let verb = if self.peek() == Some(':') {
            self.pos += 1;
            Some(self.literal())
        } else {
            None
        };
        if self.pos < self.chars.len() {
            return Err((
                "Expected '/', ':', path literal character, or end of input",
                self.pos,
            ));
        }
        Ok(Template { segments, verb })
    }

    fn segments(&mut self) -> Result<Vec<Segment>, ParseError> {
        let mut segments = vec![self.segment()?];
        while self.peek() == Some('/') {
            self.pos += 1;
            segments.push(self.segment()?);
        }
        Ok(segments)
    }

    fn segment(&mut self) -> Result<Segment, ParseError> {
        match self.peek() {
            Some('*') => {
                let start = self.pos;
                self.pos += 1;
                if self.peek() == Some('*') {
                    self.pos += 1;
                    Ok(Segment::Multi(start))
                } else {
                    Ok(Segment::Single)
                }
            }
            Some('{') => self.variable(),
            _ => Ok(Segment::Literal(self.literal())),
        }
    }

    fn variable(&mut self) -> Result<Segment, ParseError> {
        let start = self.pos;
        self.pos += 1; // '{'
        let mut path = vec![self.ident()?];
        while self.peek() == Some('.') {
            self.pos += 1;
            path.push(self.ident()?);
        }
        let sub = if self.peek() == Some('=') {
            self.pos += 1;
            Some(self.segments()?)
        } else {
            None
        };
        if self.peek() != Some('}') {
            return Err(("Unclosed variable or unexpected character", self.pos));
        }
        self.pos += 1;
        Ok(Segment::Variable(path, sub, start))
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() => {}
            _ => return Err(("Expected identifier first letter", self.pos)),
        }
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn literal(&mut self) -> String {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if !matches!(c, '*' | '{' | '}' | '/' | ':' | '\n')) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }
}

fn validate(template: &Template) -> Result<(), String> {
    fn flatten<'a>(
        segments: &'a [Segment],
        top: bool,
        out: &mut Vec<&'a Segment>,
    ) -> Result<(), String> {
        for segment in segments {
            match segment {
                Segment::Variable(_, _, at) if !top => {
                    return Err(format!(
                        "Variable segments may not be nested (character {})",
                        at + 1
                    ));
                }
                Segment::Variable(_, Some(sub), _) => flatten(sub, false, out)?,
                other => out.push(other),
            }
        }
        Ok(())
    }
    let mut flat = Vec::new();
    flatten(&template.segments, true, &mut flat)?;
    if let Some((_, init)) = flat.split_last() {
        for segment in init {
            if let Segment::Multi(at) = segment {
                return Err(format!(
                    "Multi segment matchers (**) may only be in the last position of the template (character {})",
                    at + 1
                ));
            }
        }
    }
    let mut seen: Vec<&Vec<String>> = Vec::new();
    for segment in &template.segments {
        if let Segment::Variable(path, _, at) = segment {
            if seen.contains(&path) {
                return Err(format!("Duplicate path in template (character {})", at + 1));
            }
            seen.push(path);
        }
    }
    Ok(())
}

fn to_regex(out: &mut String, segments: &[Segment], leading_slash: bool) {
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 || leading_slash {
            out.push('/');
        }
        match segment {
            Segment::Literal(literal) => out.push_str(&regex::escape(literal)),
            Segment::Single => out.push_str("[^/:]*"),
            Segment::Multi(_) => out.push_str(".*"),
            Segment::Variable(_, None, _) => out.push_str("([^/:]*)"),
            Segment::Variable(_, Some(sub), _) => {
                out.push('(');
                to_regex(out, sub, false);
                out.push(')');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PathTemplate;

    fn caps(template: &str, path: &str) -> Option<Vec<String>> {
        PathTemplate::parse(template).unwrap().captures(path)
    }

    #[test]
    fn the_literal_prefix_stops_at_the_first_wildcard_or_variable() {
        let prefix = |t: &str| PathTemplate::parse(t).unwrap().prefix;
        assert_eq!(prefix("/cart/{user_id}/items/add"), "/cart/");
        assert_eq!(prefix("/carts/{user_id}"), "/carts/");
        assert_eq!(prefix("/a/b:verb"), "/a/b");
        assert_eq!(prefix("/{x}"), "/");
        assert_eq!(prefix("/a/*/c"), "/a/");
        assert_eq!(prefix("/a//b/**"), "/a//b/");
        // Every path the regex matches starts with it, a verb included.
        assert_eq!(caps("/a/b:verb", "/a/b:verb"), Some(vec![]));
        assert_eq!(caps("/a/b:verb", "/a/b"), None);
        assert_eq!(caps("/carts/{id}", "/cart/x"), None);
    }

    #[test]
    fn literals_variables_and_verbs() {
        assert_eq!(caps("/a/b", "/a/b"), Some(vec![]));
        assert_eq!(caps("/a/b", "/a/b/"), None);
        assert_eq!(caps("/a/{x}", "/a/1"), Some(vec!["1".into()]));
        // `*` and plain variables match an empty segment, as in the official regex.
        assert_eq!(caps("/a/{x}", "/a/"), Some(vec!["".into()]));
        assert_eq!(caps("/a/{x}", "/a/1/2"), None);
        assert_eq!(caps("/a/{x}", "/a/1:2"), None);
        assert_eq!(caps("/a/*/c", "/a/b/c"), Some(vec![]));
        assert_eq!(
            caps(
                "/v1/{name=shelves/*}/books/{id}:get",
                "/v1/shelves/s1/books/7:get"
            ),
            Some(vec!["shelves/s1".into(), "7".into()])
        );
        assert_eq!(caps("/v1/{name=shelves/*}", "/v1/other/s1"), None);
        assert_eq!(
            caps("/files/{path=**}", "/files/a/b/c.txt"),
            Some(vec!["a/b/c.txt".into()])
        );
        assert_eq!(caps("/files/**:list", "/files/x/y:list"), Some(vec![]));
        assert_eq!(
            caps("/pkg.Svc/M", "/pkgXSvc/M"),
            None,
            "literals are quoted"
        );
        assert_eq!(caps("/", "/"), Some(vec![]));
    }

    #[test]
    fn variables_in_order() {
        let t = PathTemplate::parse("/a/{x}/{y.z=*}/c").unwrap();
        assert_eq!(
            t.variables(),
            &[vec!["x".to_owned()], vec!["y".to_owned(), "z".to_owned()]]
        );
    }

    #[test]
    fn grammar_errors() {
        let err = |t: &str| PathTemplate::parse(t).unwrap_err();
        assert!(
            err("a/b").contains("must start with a slash"),
            "{}",
            err("a/b")
        );
        assert!(err("/a/{x").contains("Unclosed variable"));
        assert!(err("/a/{1x}").contains("identifier"));
        assert!(err("/a/{x}y").contains("Expected '/'"));
        assert!(err("/a:b/c").contains("Expected '/'"));
        assert!(err("/**/a").contains("last position"));
        assert!(err("/{x=**}/a").contains("last position"));
        assert!(err("/{x={y}}").contains("may not be nested"));
        assert!(err("/{x}/{x}").contains("Duplicate"));
    }
}
