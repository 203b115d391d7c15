//! Tests of the HTTP/JSON transcoding against the shopping cart, the TCK model and the fixtures
//! in `tests/http_fixtures/`. Pools are compiled by protox and decoded from the encoded set,
//! as the proxy receives them, so that the `google.api.http` options survive.

use std::path::Path;
use std::sync::OnceLock;

use http::Method;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde_json::{Value as Json, json};

use super::{
    BadRequest, HttpMatch, HttpRules, StreamFormat, accepts_event_stream, ndjson_line, sse_event,
};

fn compile(includes: &[&str], files: &[&str]) -> DescriptorPool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let includes: Vec<_> = includes.iter().map(|p| root.join(p)).collect();
    let mut compiler = protox::Compiler::new(includes).expect("include paths");
    compiler.include_imports(true);
    compiler.open_files(files).expect("protos compile");
    let bytes = compiler.encode_file_descriptor_set();
    DescriptorPool::decode(bytes.as_slice()).expect("descriptor set decodes")
}

fn cart_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        compile(
            &["../samples/shopping-cart/proto", "../cloudstate-sdk/proto"],
            &["shoppingcart/shoppingcart.proto"],
        )
    })
}

fn tck_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        compile(
            &["../tck-adapter/proto", "../cloudstate-sdk/proto"],
            &[
                "cloudstate/tck/model/action.proto",
                "cloudstate/tck/model/crdt.proto",
                "cloudstate/tck/model/eventlogeventing.proto",
                "cloudstate/tck/model/eventsourced.proto",
                "cloudstate/tck/model/valueentity.proto",
            ],
        )
    })
}

fn fixture_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        compile(
            &["tests/http_fixtures", "../cloudstate-sdk/proto"],
            &[
                "devproxy/httptest/things.proto",
                "devproxy/httptest/bad_rules.proto",
            ],
        )
    })
}

const CART: &str = "com.example.shoppingcart.ShoppingCart";
const THINGS: &str = "devproxy.httptest.Things";
const TCK_SERVICES: &[&str] = &[
    "cloudstate.tck.model.EventSourcedTckModel",
    "cloudstate.tck.model.EventSourcedTwo",
    "cloudstate.tck.model.EventSourcedConfigured",
    "cloudstate.tck.model.valueentity.ValueEntityTckModel",
    "cloudstate.tck.model.valueentity.ValueEntityTwo",
    "cloudstate.tck.model.crdt.CrdtTckModel",
    "cloudstate.tck.model.crdt.CrdtTwo",
    "cloudstate.tck.model.action.ActionTckModel",
    "cloudstate.tck.model.action.ActionTwo",
];

fn cart() -> HttpRules {
    HttpRules::new(cart_pool(), &[CART]).unwrap()
}

fn things() -> HttpRules {
    HttpRules::new(fixture_pool(), &[THINGS]).unwrap()
}

fn tck() -> HttpRules {
    HttpRules::new(tck_pool(), TCK_SERVICES).unwrap()
}

fn get<'a>(rules: &'a HttpRules, method: Method, path: &str) -> HttpMatch<'a> {
    rules
        .route(&method, path)
        .unwrap_or_else(|| panic!("no route for {method} {path}"))
}

/// The input message built for the request, as JSON without default fields.
fn input(m: &HttpMatch<'_>, query: Option<&str>, content_type: Option<&str>, body: &str) -> Json {
    let bytes = m
        .request(query, content_type, body.as_bytes())
        .unwrap_or_else(|e| panic!("request rejected: {e}"));
    let message = DynamicMessage::decode(m.method().input(), bytes.as_slice()).unwrap();
    serde_json::to_value(&message).unwrap()
}

fn bad(m: &HttpMatch<'_>, query: Option<&str>, content_type: Option<&str>, body: &str) -> String {
    match m.request(query, content_type, body.as_bytes()) {
        Err(BadRequest(reason)) => reason,
        Ok(bytes) => panic!("request accepted: {bytes:?}"),
    }
}

/// Protobuf bytes of `json` as message type `desc`.
fn encode(desc: MessageDescriptor, json: &str) -> Vec<u8> {
    let mut de = serde_json::Deserializer::from_str(json);
    DynamicMessage::deserialize(desc, &mut de)
        .unwrap()
        .encode_to_vec()
}

/// The unary JSON response text for a reply given as JSON.
fn reply(m: &HttpMatch<'_>, output_json: &str) -> String {
    let (content_type, body) = m
        .response(&encode(m.method().output(), output_json))
        .unwrap();
    assert_eq!(content_type, "application/json");
    String::from_utf8(body).unwrap()
}

const JSON_CT: Option<&str> = Some("application/json");

// ---- shopping cart ----

#[test]
fn cart_add_item_body_star_and_path_variable() {
    let rules = cart();
    let m = get(&rules, Method::POST, "/cart/u1/items/add");
    assert_eq!(m.method().name(), "AddItem");
    assert_eq!(
        input(
            &m,
            None,
            JSON_CT,
            r#"{"productId":"p1","name":"Pen","quantity":2}"#
        ),
        json!({"userId":"u1","productId":"p1","name":"Pen","quantity":2})
    );
    // Path variables override the body; proto names are accepted too; the query is ignored.
    assert_eq!(
        input(
            &m,
            Some("quantity=9&nope=1"),
            Some("application/json; charset=utf-8"),
            r#"{"user_id":"other","product_id":"p2"}"#
        ),
        json!({"userId":"u1","productId":"p2"})
    );
    assert_eq!(reply(&m, "{}"), "{}", "google.protobuf.Empty");
}

#[test]
fn cart_remove_item_path_variables_only() {
    let rules = cart();
    let m = get(&rules, Method::POST, "/cart/u1/items/p%201/remove");
    assert_eq!(m.method().name(), "RemoveItem");
    // No body rule: content type and body are not looked at.
    assert_eq!(
        input(&m, Some("product_id=ignored"), None, "not json"),
        json!({"userId":"u1","productId":"p 1"})
    );
}

#[test]
fn cart_get_cart_prints_default_fields() {
    let rules = cart();
    let m = get(&rules, Method::GET, "/carts/u1");
    assert_eq!(m.method().name(), "GetCart");
    assert_eq!(input(&m, None, None, ""), json!({"userId":"u1"}));
    assert_eq!(reply(&m, "{}"), r#"{"items":[]}"#);
    assert_eq!(
        reply(
            &m,
            r#"{"items":[{"productId":"p1","name":"Pen","quantity":2},{}]}"#
        ),
        r#"{"items":[{"productId":"p1","name":"Pen","quantity":2},{"productId":"","name":"","quantity":0}]}"#
    );
}

#[test]
fn cart_get_items_response_body() {
    let rules = cart();
    let m = get(&rules, Method::GET, "/carts/u1/items");
    assert_eq!(m.method().name(), "GetCart");
    assert_eq!(input(&m, None, None, ""), json!({"userId":"u1"}));
    assert_eq!(reply(&m, "{}"), "[]");
    // Normal JSON mapping, not the official doubles-and-no-defaults quirk.
    assert_eq!(
        reply(
            &m,
            r#"{"items":[{"productId":"p1","name":"Pen","quantity":2},{"quantity":1}]}"#
        ),
        r#"[{"productId":"p1","name":"Pen","quantity":2},{"productId":"","name":"","quantity":1}]"#
    );
}

#[test]
fn cart_unmatched_requests_are_404() {
    let rules = cart();
    assert!(rules.route(&Method::GET, "/cart/u1/items/add").is_none());
    assert!(rules.route(&Method::POST, "/carts/u1").is_none());
    assert!(rules.route(&Method::GET, "/carts/u1/items/more").is_none());
    assert!(rules.route(&Method::GET, "/nothing").is_none());
    // Methods with a rule get no generic endpoint.
    assert!(
        rules
            .route(
                &Method::POST,
                "/com.example.shoppingcart.ShoppingCart/AddItem"
            )
            .is_none()
    );
}

#[test]
fn cart_route_ignores_the_query_and_describes_rules() {
    let rules = cart();
    let m = get(&rules, Method::POST, "/cart/u1/items/add?x=1");
    assert_eq!(
        m.rule(),
        r#"POST /cart/{user_id}/items/add -> com.example.shoppingcart.ShoppingCart.AddItem (body "*")"#
    );
    assert_eq!(
        rules.describe(),
        vec![
            r#"POST /cart/{user_id}/items/add -> com.example.shoppingcart.ShoppingCart.AddItem (body "*")"#,
            "POST /cart/{user_id}/items/{product_id}/remove -> com.example.shoppingcart.ShoppingCart.RemoveItem",
            "GET /carts/{user_id} -> com.example.shoppingcart.ShoppingCart.GetCart",
            r#"GET /carts/{user_id}/items -> com.example.shoppingcart.ShoppingCart.GetCart (response_body "items")"#,
        ]
    );
}

#[test]
fn empty_path_variable_matches_as_in_the_official_regex() {
    let rules = cart();
    let m = get(&rules, Method::GET, "/carts/");
    assert_eq!(input(&m, None, None, ""), json!({}));
}

// ---- TCK ----

#[test]
fn tck_configured_and_generic_routes() {
    let rules = tck();
    let m = get(&rules, Method::POST, "/tck/model/eventsourced/abc");
    assert_eq!(
        m.method().full_name(),
        "cloudstate.tck.model.EventSourcedTckModel.Process"
    );
    assert_eq!(input(&m, None, JSON_CT, "{}"), json!({"id":"abc"}));
    assert_eq!(
        input(&m, None, JSON_CT, r#"{"actions":[{"emit":{"value":"x"}}]}"#),
        json!({"id":"abc","actions":[{"emit":{"value":"x"}}]})
    );
    assert_eq!(reply(&m, "{}"), r#"{"message":""}"#);
    assert_eq!(reply(&m, r#"{"message":"xy"}"#), r#"{"message":"xy"}"#);

    let m = get(
        &rules,
        Method::POST,
        "/cloudstate.tck.model.EventSourcedTwo/Call",
    );
    assert_eq!(
        m.method().full_name(),
        "cloudstate.tck.model.EventSourcedTwo.Call"
    );
    assert_eq!(input(&m, None, JSON_CT, r#"{"id":"x"}"#), json!({"id":"x"}));
    assert_eq!(reply(&m, "{}"), r#"{"message":""}"#);

    let m = get(
        &rules,
        Method::POST,
        "/cloudstate.tck.model.valueentity.ValueEntityTwo/Call",
    );
    assert_eq!(m.method().name(), "Call");
    let m = get(&rules, Method::POST, "/tck/model/entity/e1");
    assert_eq!(
        m.method().full_name(),
        "cloudstate.tck.model.valueentity.ValueEntityTckModel.Process"
    );

    let m = get(&rules, Method::POST, "/tck/model/action/unary");
    assert_eq!(
        input(
            &m,
            None,
            JSON_CT,
            r#"{"groups":[{"steps":[{"reply":{"message":"foo"}}]}]}"#
        ),
        json!({"groups":[{"steps":[{"reply":{"message":"foo"}}]}]})
    );
    // Streaming methods without a rule get the generic POST as well.
    let m = get(
        &rules,
        Method::POST,
        "/cloudstate.tck.model.action.ActionTckModel/ProcessStreamedOut",
    );
    assert!(m.method().is_server_streaming());
    assert!(
        rules
            .route(
                &Method::POST,
                "/cloudstate.tck.model.action.ActionTckModel/ProcessUnary"
            )
            .is_none()
    );
}

#[test]
fn tck_crdt_responses() {
    let rules = tck();
    let m = get(&rules, Method::POST, "/tck/model/crdt/pncounter-1");
    assert_eq!(input(&m, None, JSON_CT, "{}"), json!({"id":"pncounter-1"}));
    assert_eq!(
        input(
            &m,
            None,
            JSON_CT,
            r#"{"actions":[{"update":{"pncounter":{"change":42}}}]}"#
        ),
        json!({"id":"pncounter-1","actions":[{"update":{"pncounter":{"change":"42"}}}]})
    );
    // Unset message fields and oneof members are not printed; int64 is a string.
    assert_eq!(reply(&m, "{}"), "{}");
    assert_eq!(
        reply(&m, r#"{"state":{"pncounter":{}}}"#),
        r#"{"state":{"pncounter":{"value":"0"}}}"#
    );
    assert_eq!(
        reply(&m, r#"{"state":{"pncounter":{"value":"-81"}}}"#),
        r#"{"state":{"pncounter":{"value":"-81"}}}"#
    );
    let m = get(
        &rules,
        Method::POST,
        "/cloudstate.tck.model.crdt.CrdtTwo/Call",
    );
    assert_eq!(reply(&m, "{}"), "{}");
}

#[test]
fn eventing_service_with_any_input() {
    let rules = HttpRules::new(
        tck_pool(),
        &["cloudstate.tck.model.eventlogeventing.EventLogSubscriberModel"],
    )
    .unwrap();
    let m = get(
        &rules,
        Method::POST,
        "/cloudstate.tck.model.eventlogeventing.EventLogSubscriberModel/ProcessAnyEvent",
    );
    assert_eq!(m.method().input().full_name(), "google.protobuf.Any");
}

// ---- fixtures: routing ----

#[test]
fn later_rules_take_precedence() {
    let rules = things();
    // Late is declared after Early, so its /shadow/{id} wins even for the literal path.
    assert_eq!(
        get(&rules, Method::GET, "/shadow/fixed").method().name(),
        "Late"
    );
    // Special is declared after GetThing's /things/{id}.
    assert_eq!(
        get(&rules, Method::GET, "/things/special").method().name(),
        "Special"
    );
    assert_eq!(
        get(&rules, Method::GET, "/things/other").method().name(),
        "GetThing"
    );
}

#[test]
fn verbs_and_custom_any() {
    let rules = things();
    assert_eq!(
        get(&rules, Method::PUT, "/things/t/inner").method().name(),
        "UpdateThing"
    );
    assert_eq!(
        get(&rules, Method::GET, "/things/t/inner").method().name(),
        "GetThing"
    );
    assert_eq!(
        get(&rules, Method::PATCH, "/things/t").method().name(),
        "PatchThing"
    );
    assert_eq!(
        get(&rules, Method::DELETE, "/things/t").method().name(),
        "DeleteThing"
    );
    assert!(rules.route(&Method::POST, "/things/t").is_none());
    for method in [
        Method::GET,
        Method::POST,
        Method::DELETE,
        Method::OPTIONS,
        Method::from_bytes(b"FROB").unwrap(),
    ] {
        let m = get(&rules, method, "/any/a1");
        assert_eq!(m.method().name(), "AnyMethod");
        assert_eq!(input(&m, None, None, ""), json!({"id":"a1"}));
    }
    let m = get(&rules, Method::POST, "/devproxy.httptest.Things/Plain");
    assert_eq!(input(&m, None, JSON_CT, r#"{"num":3}"#), json!({"num":3}));
}

#[test]
fn glob_template() {
    let rules = things();
    let m = get(&rules, Method::GET, "/glob/prefix/abc/x/y:list");
    assert_eq!(m.method().name(), "Glob");
    assert_eq!(input(&m, None, None, ""), json!({"id":"prefix/abc"}));
    assert!(
        rules
            .route(&Method::GET, "/glob/other/abc/x:list")
            .is_none()
    );
    assert!(rules.route(&Method::GET, "/glob/prefix/abc/x").is_none());
}

#[test]
fn descriptors_without_http_proto_get_generic_rules() {
    let pool = compile(
        &["tests/http_fixtures"],
        &["devproxy/httptest/no_http.proto"],
    );
    assert!(pool.get_extension_by_name("google.api.http").is_none());
    let rules = HttpRules::new(&pool, &["devproxy.nohttp.Pinger"]).unwrap();
    let m = get(&rules, Method::POST, "/devproxy.nohttp.Pinger/Ping");
    assert_eq!(input(&m, None, JSON_CT, r#"{"id":"p"}"#), json!({"id":"p"}));
    assert_eq!(
        get(&rules, Method::POST, "/devproxy.nohttp.Pinger/Pings")
            .method()
            .name(),
        "Pings"
    );
    assert!(
        rules
            .route(&Method::GET, "/devproxy.nohttp.Pinger/Ping")
            .is_none()
    );
}

// ---- fixtures: request building ----

#[test]
fn bad_bodies_and_content_types() {
    let rules = cart();
    let m = get(&rules, Method::POST, "/cart/u1/items/add");
    assert!(bad(&m, None, JSON_CT, "{").contains("Malformed JSON"));
    assert!(bad(&m, None, JSON_CT, "").contains("Malformed JSON"));
    assert!(bad(&m, None, JSON_CT, "null").contains("Malformed JSON"));
    assert!(bad(&m, None, JSON_CT, "[]").contains("Malformed JSON"));
    assert!(bad(&m, None, JSON_CT, "{} x").contains("Malformed JSON"));
    assert!(bad(&m, None, JSON_CT, r#"{"quantity":"many"}"#).contains("Malformed JSON"));
    let unknown = bad(&m, None, JSON_CT, r#"{"productId":"p","colour":"red"}"#);
    assert!(unknown.contains("colour"), "{unknown}");
    assert!(bad(&m, None, Some("text/plain"), "{}").contains("Content-Type"));
    assert!(bad(&m, None, None, "{}").contains("Content-Type"));
    assert!(bad(&m, None, Some("application/jsonx"), "{}").contains("Content-Type"));
    assert_eq!(
        input(&m, None, Some("Application/JSON"), "{}"),
        json!({"userId":"u1"})
    );
}

#[test]
fn body_field_with_query_and_path() {
    let rules = things();
    let m = get(&rules, Method::PUT, "/things/t1/inner");
    assert_eq!(m.method().name(), "UpdateThing");
    assert_eq!(
        input(
            &m,
            Some("note=hello+world&labels=a&labels=b&inner.name=lost&wrapped.inner.name=deep&id=q"),
            JSON_CT,
            r#"{"name":"n","count":3}"#
        ),
        json!({
            "id":"t1",
            "inner":{"name":"n","count":3},
            "note":"hello world",
            "labels":["a","b"],
            "wrapped":{"inner":{"name":"deep"}}
        })
    );
    assert!(bad(&m, Some("nope=1"), JSON_CT, "{}").contains("non-existent"));
    assert!(bad(&m, None, JSON_CT, r#"{"note":"not in Inner"}"#).contains("note"));
    assert!(bad(&m, None, Some("text/plain"), "{}").contains("Content-Type"));
}

#[test]
fn query_parameters() {
    let rules = things();
    let m = get(&rules, Method::GET, "/things/t1");
    assert_eq!(
        input(
            &m,
            Some(
                "num=5&labels=a&labels=&labels=b&numbers=1&numbers=2&inner.name=x&inner.tags=t1&inner.tags=t2&text=hey&id=fromquery&flag=True&big=&&small=0.5"
            ),
            None,
            "ignored"
        ),
        json!({
            "id":"t1",
            "num":5,
            "labels":["a","b"],
            "numbers":[1,2],
            "inner":{"name":"x","tags":["t1","t2"]},
            "text":"hey",
            "flag":true,
            "small":0.5
        })
    );
    // Empty values are skipped, also when repeated for a non-repeated field.
    assert_eq!(
        input(&m, Some("num=&num=4"), None, ""),
        json!({"id":"t1","num":4})
    );
    assert_eq!(input(&m, Some("num"), None, ""), json!({"id":"t1"}));
    // Percent-escapes and `+` in keys and values.
    assert_eq!(
        input(&m, Some("te%78t=a%26b+c%2B"), None, ""),
        json!({"id":"t1","text":"a&b c+"})
    );

    assert!(bad(&m, Some("num=1&num=2"), None, "").contains("Multiple values"));
    assert!(bad(&m, Some("inner=x"), None, "").contains("message type"));
    assert!(bad(&m, Some("attrs=x"), None, "").contains("message type"));
    assert!(bad(&m, Some("inners=x"), None, "").contains("message type"));
    assert!(bad(&m, Some("color=RED"), None, "").contains("enum"));
    assert!(bad(&m, Some("nope=1"), None, "").contains("non-existent"));
    assert!(bad(&m, Some("nope="), None, "").contains("non-existent"));
    assert!(bad(&m, Some("inner.nope=1"), None, "").contains("non-existent"));
    assert!(bad(&m, Some("inners.name=x"), None, "").contains("not a singular message"));
    assert!(bad(&m, Some("id.x=1"), None, "").contains("not a singular message"));
    assert!(bad(&m, Some("num=abc"), None, "").contains("Malformed query parameter"));
    assert!(bad(&m, Some("num=1.5"), None, "").contains("Malformed query parameter"));
    assert!(bad(&m, Some("flag=yes"), None, "").contains("Malformed query parameter"));
    assert!(bad(&m, Some("text=%zz"), None, "").contains("Malformed query string"));
}

#[test]
fn path_variables_are_typed() {
    let rules = things();
    let m = get(
        &rules,
        Method::GET,
        "/typed/-5/TRUE/9007199254740993/2.5/AQID/4294967295/1.5f",
    );
    assert_eq!(m.method().name(), "Typed");
    assert_eq!(
        input(&m, None, None, ""),
        json!({
            "num":-5,
            "flag":true,
            "big":"9007199254740993",
            "ratio":2.5,
            "blob":"AQID",
            "unum":4294967295u32,
            "small":1.5
        })
    );
    let m = get(&rules, Method::GET, "/typed/7/fAlSe/0/1e3/AQI/0/-Infinity");
    assert_eq!(
        input(&m, None, None, ""),
        json!({"num":7,"ratio":1000.0,"blob":"AQI=","small":"-Infinity"})
    );
    for path in [
        "/typed/x/true/0/0/AA/0/0",
        // `+` decodes to a space, as with Java's URLDecoder.
        "/typed/+7/true/0/0/AA/0/0",
        "/typed/1/yes/0/0/AA/0/0",
        "/typed/1/true/1.5/0/AA/0/0",
        "/typed/1/true/0/abc/AA/0/0",
        "/typed/1/true/0/0/AA/-1/0",
        "/typed/2147483648/true/0/0/AA/0/0",
        "/typed/1/true/0/0/AA/0/inf",
    ] {
        let reason = bad(&get(&rules, Method::GET, path), None, None, "");
        assert!(reason.contains("wrong type"), "{path}: {reason}");
    }
}

#[test]
fn path_variables_are_url_decoded() {
    let rules = things();
    let id = |path: &str| input(&get(&rules, Method::GET, path), None, None, "")["id"].clone();
    assert_eq!(id("/things/a%20b"), json!("a b"));
    assert_eq!(
        id("/things/a+b"),
        json!("a b"),
        "URLDecoder turns + into a space"
    );
    assert_eq!(
        id("/things/a%2Bb"),
        json!("a b"),
        "%2B is normalised to + first"
    );
    assert_eq!(
        id("/things/a%2Fb"),
        json!("a/b"),
        "an encoded slash stays in the segment"
    );
    assert_eq!(id("/things/%C3%A9t%C3%A9"), json!("été"));
    assert_eq!(id("/things/a%40b.com"), json!("a@b.com"));
    // An encoded colon becomes a colon, which a variable never matches.
    assert!(rules.route(&Method::GET, "/things/a%3Ab").is_none());
    let m = get(&rules, Method::GET, "/things/%zz");
    assert!(bad(&m, None, None, "").contains("percent-escape"));
    // Literal segments match their encoded form too, as akka-http decodes them first.
    assert_eq!(
        get(&rules, Method::GET, "/thing%73/x").method().name(),
        "GetThing"
    );
}

#[test]
fn body_star_on_patch_sets_path_last() {
    let rules = things();
    let m = get(&rules, Method::PATCH, "/things/t1");
    assert_eq!(
        input(
            &m,
            Some("num=1"),
            JSON_CT,
            r#"{"id":"body","big":"12","color":"RED","attrs":{"k":"v"},"inner":{"tags":["x"]}}"#
        ),
        json!({"id":"t1","big":"12","color":"RED","attrs":{"k":"v"},"inner":{"tags":["x"]}})
    );
}

// ---- fixtures: responses ----

const EMPTY_THING: &str = r#"{"id":"","big":"0","num":0,"unum":0,"flag":false,"ratio":0.0,"small":0.0,"blob":"","color":"COLOR_UNSPECIFIED","labels":[],"numbers":[],"attrs":{},"inners":[]}"#;

#[test]
fn responses_print_defaults_int64_as_strings_and_enum_names() {
    let rules = things();
    let m = get(&rules, Method::GET, "/things/t1");
    assert_eq!(reply(&m, "{}"), EMPTY_THING);
    let printed: Json = serde_json::from_str(&reply(
        &m,
        r#"{"big":"5","color":"RED","blob":"AQID","maybe":0,"amount":"7","inner":{}}"#,
    ))
    .unwrap();
    assert_eq!(printed["big"], json!("5"));
    assert_eq!(printed["color"], json!("RED"));
    assert_eq!(printed["blob"], json!("AQID"));
    assert_eq!(
        printed["maybe"],
        json!(0),
        "a present optional field prints"
    );
    assert_eq!(printed["amount"], json!("7"));
    assert_eq!(printed["inner"], json!({"name":"","count":0,"tags":[]}));
    assert!(
        printed.get("text").is_none(),
        "unset oneof members are not printed"
    );
}

#[test]
fn response_body_of_each_field_kind() {
    let rules = things();
    let body = |suffix: &str, output: &str| {
        reply(
            &get(&rules, Method::GET, &format!("/things/t1/{suffix}")),
            output,
        )
    };
    assert_eq!(body("inner", "{}"), r#"{"name":"","count":0,"tags":[]}"#);
    assert_eq!(
        body("inner", r#"{"inner":{"name":"n","count":2},"big":"1"}"#),
        r#"{"name":"n","count":2,"tags":[]}"#
    );
    assert_eq!(body("inners", "{}"), "[]");
    assert_eq!(
        body(
            "inners",
            r#"{"inners":[{"name":"a"},{"count":1,"tags":["t"]}]}"#
        ),
        r#"[{"name":"a","count":0,"tags":[]},{"name":"","count":1,"tags":["t"]}]"#
    );
    assert_eq!(body("maybe", "{}"), "0");
    assert_eq!(body("maybe", r#"{"maybe":3}"#), "3");
    assert_eq!(body("big", r#"{"big":"7"}"#), r#""7""#);
    assert_eq!(
        body("labels", r#"{"labels":["a","b,c]"]}"#),
        r#"["a","b,c]"]"#
    );
    assert_eq!(body("attrs", r#"{"attrs":{"k":"v"}}"#), r#"{"k":"v"}"#);
    assert_eq!(
        body("amount", "{}"),
        r#""0""#,
        "unset oneof member prints its default"
    );
    assert_eq!(body("amount", r#"{"text":"t"}"#), r#""0""#);
}

#[test]
fn undecodable_reply_is_an_error() {
    let rules = things();
    let m = get(&rules, Method::GET, "/things/t1");
    assert!(
        m.response(&[0xff, 0xff])
            .unwrap_err()
            .contains("cannot decode")
    );
}

fn http_body(content_type: &str, data: &[u8]) -> Vec<u8> {
    let desc = fixture_pool()
        .get_message_by_name("google.api.HttpBody")
        .unwrap();
    let mut message = DynamicMessage::new(desc);
    message.set_field_by_name(
        "content_type",
        prost_reflect::Value::String(content_type.to_owned()),
    );
    message.set_field_by_name("data", prost_reflect::Value::Bytes(data.to_vec().into()));
    message.encode_to_vec()
}

#[test]
fn http_body_output_is_raw() {
    let rules = things();
    let m = get(&rules, Method::GET, "/download/d1");
    assert_eq!(
        m.response(&http_body("text/plain; charset=utf-8", b"hello"))
            .unwrap(),
        ("text/plain; charset=utf-8".to_owned(), b"hello".to_vec())
    );
    assert_eq!(
        m.response(&http_body("", b"\x00\x01")).unwrap(),
        (String::new(), vec![0, 1])
    );
    assert!(
        m.response(&http_body("nonsense", b"x"))
            .unwrap_err()
            .contains("content_type")
    );
    assert!(m.response(&http_body("text/plain\n", b"x")).is_err());
}

#[test]
fn streaming_formats_and_chunks() {
    let rules = things();
    let watch = get(&rules, Method::GET, "/watch/w1");
    assert_eq!(watch.stream_format(None), StreamFormat::JsonLines);
    assert_eq!(watch.stream_format(Some("*/*")), StreamFormat::JsonLines);
    assert_eq!(
        watch.stream_format(Some("text/event-stream")),
        StreamFormat::EventStream
    );
    let thing = encode(watch.method().output(), r#"{"id":"w1","big":"3"}"#);
    let line = watch.stream_chunk(StreamFormat::JsonLines, &thing).unwrap();
    assert!(line.starts_with(br#"{"id":"w1","big":"3","#));
    assert!(line.ends_with(b"}\n"));
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    let event = watch
        .stream_chunk(StreamFormat::EventStream, &thing)
        .unwrap();
    assert!(event.starts_with(br#"data:{"id":"w1","#));
    assert!(event.ends_with(b"}\n\n"));
    assert!(
        watch
            .stream_chunk(StreamFormat::RawHttpBody, &thing)
            .is_err()
    );

    let files = get(&rules, Method::GET, "/files/f1");
    assert_eq!(
        files.stream_format(Some("application/json")),
        StreamFormat::RawHttpBody
    );
    let chunk = http_body("text/plain", b"part");
    assert_eq!(
        files
            .stream_chunk(StreamFormat::RawHttpBody, &chunk)
            .unwrap(),
        b"part"
    );
    // SSE prints the HttpBody message itself as JSON, as the official proxy does.
    assert_eq!(
        files.stream_format(Some("text/html, text/event-stream;q=0.9")),
        StreamFormat::EventStream
    );
    assert_eq!(
        files
            .stream_chunk(StreamFormat::EventStream, &chunk)
            .unwrap(),
        b"data:{\"contentType\":\"text/plain\",\"data\":\"cGFydA==\",\"extensions\":[]}\n\n"
    );

    assert_eq!(
        StreamFormat::EventStream.content_type(),
        Some("text/event-stream")
    );
    assert_eq!(
        StreamFormat::JsonLines.content_type(),
        Some("application/json")
    );
    assert_eq!(StreamFormat::RawHttpBody.content_type(), None);
}

#[test]
fn framing_helpers() {
    assert_eq!(ndjson_line(b"{}"), b"{}\n");
    assert_eq!(sse_event(b"{\"a\":1}"), b"data:{\"a\":1}\n\n");
    assert_eq!(sse_event(b"a\nb"), b"data:a\ndata:b\n\n");
    assert!(accepts_event_stream(Some("TEXT/EVENT-STREAM")));
    assert!(!accepts_event_stream(Some("text/*")));
    assert!(!accepts_event_stream(None));
}

// ---- invalid rules ----

fn rule_error(service: &str) -> String {
    let name = format!("devproxy.bad.{service}");
    let err = HttpRules::new(fixture_pool(), &[name.as_str()]).unwrap_err();
    assert!(err.contains(&name), "{err}");
    err
}

#[test]
fn invalid_rules_are_rejected_with_service_method_and_rule() {
    let cases = [
        (
            "NestedPathVar",
            "nested field paths",
            r#"get: "/x/{inner.name}""#,
        ),
        (
            "RepeatedPathVar",
            "repeated parameters",
            r#"get: "/x/{labels}""#,
        ),
        ("MapPathVar", "map parameters", r#"get: "/x/{attrs}""#),
        (
            "MessagePathVar",
            "message path parameters",
            r#"get: "/x/{inner}""#,
        ),
        (
            "EnumPathVar",
            "enum path parameters",
            r#"get: "/x/{color}""#,
        ),
        (
            "UnknownPathVar",
            "unknown field name [nope]",
            r#"get: "/x/{nope}""#,
        ),
        ("NoSlash", "must start with a slash", r#"get: "x/{id}""#),
        ("Unclosed", "Unclosed variable", r#"get: "/x/{id""#),
        ("MultiNotLast", "last position", r#"get: "/**/x""#),
        ("CustomKind", "kind [*]", r#"kind: "HEAD""#),
        (
            "WrongSelector",
            "must be empty or [devproxy.bad.WrongSelector.M]",
            "selector",
        ),
        ("UnknownBody", "does not exist", r#"body: "nope""#),
        ("RepeatedBody", "repeated field", r#"body: "labels""#),
        ("ScalarBody", "not of a message type", r#"body: "id""#),
        (
            "UnknownResponseBody",
            "does not exist on type [devproxy.bad.Req]",
            "response_body",
        ),
        (
            "NestedBindings",
            "one level of additional_bindings",
            "additional_bindings",
        ),
        (
            "BadBinding",
            "unknown field name [nope]",
            r#"{get: "/b/{nope}"}"#,
        ),
        ("NoPattern", "pattern missing", r#"body: "*""#),
        ("DuplicateVar", "Duplicate path", r#"get: "/x/{id}/{id}""#),
    ];
    for (service, problem, rule) in cases {
        let err = rule_error(service);
        assert!(err.contains(", method M,"), "{err}");
        assert!(err.contains(problem), "{service}: {err}");
        assert!(err.contains(rule), "{service}: {err}");
    }
}

#[test]
fn unknown_service_is_rejected() {
    let err = HttpRules::new(cart_pool(), &["com.example.Nope"]).unwrap_err();
    assert!(err.contains("com.example.Nope"), "{err}");
}

#[test]
fn json_errors_only_for_clients_that_prefer_json() {
    use super::accepts_json;
    for yes in [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/problem+json",
        "text/html, application/json;q=0.5",
        "application/json, text/plain",
        "text/plain;q=0.4, application/json;q=0.8",
    ] {
        assert!(accepts_json(Some(yes)), "{yes}");
    }
    for no in [
        "",
        "*/*",
        "text/plain",
        "text/plain, application/json",
        "text/*;q=0.9, application/json;q=0.8",
        "application/json;q=0",
        "application/json;q=nonsense",
        "application/jsonx",
        "text/json",
    ] {
        assert!(!accepts_json(Some(no)), "{no}");
    }
    assert!(!accepts_json(None));
}

#[test]
fn error_objects_follow_google_apis() {
    let (content_type, body) = super::error_body(
        Some("application/json"),
        http::StatusCode::PAYLOAD_TOO_LARGE,
        tonic::Code::ResourceExhausted,
        "too \"long\"",
    );
    assert_eq!(content_type, "application/json");
    let body: Json = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": 413, "message": "too \"long\"", "status": "RESOURCE_EXHAUSTED"}})
    );
    let (content_type, body) = super::error_body(
        None,
        http::StatusCode::BAD_REQUEST,
        tonic::Code::InvalidArgument,
        "why",
    );
    assert_eq!(
        (content_type, body.as_slice()),
        ("text/plain; charset=utf-8", &b"why"[..])
    );
}
