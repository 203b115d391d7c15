//! Writes the seed corpus, `corpus/<target>/<name>`, from the messages the
//! tests use: the shopping cart's and the TCK models' protocol sequences,
//! the payload encodings, the HTTP fixture's requests and rules, and the
//! entity specs the samples answer discovery with.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds` (rewrites the
//! committed seeds; the files are deterministic).

use std::fs;
use std::path::{Path, PathBuf};

use cloudstate_fuzz::{Kind, Record, StreamInput};
use cloudstate_sdk::payload::{self, Json, Payload};
use cloudstate_sdk::prost::{Message, Name};
use cloudstate_sdk::testkit::{TestServer, crdt, eventsourced as es, valueentity as ve};
use shopping_cart::proto::com::example::shoppingcart::{
    self as cart, AddLineItem, GetShoppingCart, RemoveLineItem, persistence,
};
use tck_adapter::proto::cloudstate::tck::model as tck;

fn out_dir(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("corpus folder");
    dir
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    fs::write(out_dir(target).join(name), bytes).expect("seed written");
}

fn stream(name: &str, kind: Kind, records: Vec<Record>) {
    write(
        "entity_stream",
        name,
        &StreamInput { kind, records }.encode(),
    );
}

fn msg<M: Message>(message: &M) -> Record {
    Record::Message(message.encode_to_vec())
}

fn add(user: &str, product: &str, quantity: i32) -> AddLineItem {
    AddLineItem {
        user_id: user.into(),
        product_id: product.into(),
        name: product.to_uppercase(),
        quantity,
    }
}

fn stream_seeds() {
    let svc = shopping_cart::SERVICE;
    let added = persistence::ItemAdded {
        item: Some(persistence::LineItem {
            product_id: "apple".into(),
            name: "Apple".into(),
            quantity: 2,
        }),
    };
    let snapshot = persistence::Cart {
        items: vec![persistence::LineItem {
            product_id: "pear".into(),
            name: "Pear".into(),
            quantity: 1,
        }],
    };
    stream(
        "es-cart-add-remove-get",
        Kind::EventSourced,
        vec![
            msg(&es::init(svc, "alice")),
            msg(&es::command(
                1,
                "alice",
                "AddItem",
                &add("alice", "apple", 2),
            )),
            msg(&es::command(
                2,
                "alice",
                "AddItem",
                &add("alice", "pear", 1),
            )),
            msg(&es::command(
                3,
                "alice",
                "RemoveItem",
                &RemoveLineItem {
                    user_id: "alice".into(),
                    product_id: "apple".into(),
                },
            )),
            msg(&es::command(
                4,
                "alice",
                "GetCart",
                &GetShoppingCart {
                    user_id: "alice".into(),
                },
            )),
        ],
    );
    stream(
        "es-cart-replay-snapshot",
        Kind::EventSourced,
        vec![
            msg(&es::init_with_snapshot(
                svc,
                "bob",
                3,
                payload::encode(&snapshot),
            )),
            msg(&es::event(4, payload::encode(&added))),
            Record::Split,
            msg(&es::command(
                1,
                "bob",
                "GetCart",
                &GetShoppingCart {
                    user_id: "bob".into(),
                },
            )),
            msg(&es::command(2, "bob", "AddItem", &add("bob", "fig", -1))),
        ],
    );
    stream(
        "es-cart-bad-inputs",
        Kind::EventSourced,
        vec![
            msg(&es::init(svc, "carol")),
            msg(&es::command_any(1, "carol", "AddItem", Some(true.to_any()))),
            msg(&es::command(2, "carol", "Unknown", &add("carol", "x", 1))),
            msg(&es::empty_input()),
        ],
    );
    stream(
        "es-framing-garbage",
        Kind::EventSourced,
        vec![
            msg(&es::init(svc, "dave")),
            Record::Compressed(
                es::command(1, "dave", "AddItem", &add("dave", "x", 1)).encode_to_vec(),
            ),
            Record::Raw(vec![0, 0, 0, 0, 9, 1, 2]),
        ],
    );
    stream(
        "es-command-before-init",
        Kind::EventSourced,
        vec![
            msg(&es::command(1, "eve", "AddItem", &add("eve", "x", 1))),
            msg(&es::init(svc, "eve")),
        ],
    );
    let es_request = |actions: Vec<tck::request_action::Action>| tck::Request {
        id: "tck-1".into(),
        actions: actions
            .into_iter()
            .map(|a| tck::RequestAction { action: Some(a) })
            .collect(),
    };
    use tck::request_action::Action as EsAction;
    stream(
        "es-tck-emit-forward-effect-fail",
        Kind::EventSourced,
        vec![
            msg(&es::init(
                tck::event_sourced_tck_model::SERVICE_NAME,
                "tck-1",
            )),
            msg(&es::command(
                1,
                "tck-1",
                "Process",
                &es_request(vec![
                    EsAction::Emit(tck::Emit { value: "A".into() }),
                    EsAction::Emit(tck::Emit { value: "B".into() }),
                ]),
            )),
            msg(&es::command(
                2,
                "tck-1",
                "Process",
                &es_request(vec![
                    EsAction::Effect(tck::Effect {
                        id: "other".into(),
                        synchronous: true,
                    }),
                    EsAction::Forward(tck::Forward { id: "two".into() }),
                ]),
            )),
            msg(&es::command(
                3,
                "tck-1",
                "Process",
                &es_request(vec![
                    EsAction::Emit(tck::Emit { value: "C".into() }),
                    EsAction::Fail(tck::Fail {
                        message: "expected failure".into(),
                    }),
                ]),
            )),
        ],
    );

    let vsvc = value_shopping_cart::SERVICE;
    use value_shopping_cart::proto::com::example::valueentity::shoppingcart as vcart;
    stream(
        "ve-cart-add-get-remove",
        Kind::ValueEntity,
        vec![
            msg(&ve::init(vsvc, "alice")),
            msg(&ve::command(
                1,
                "alice",
                "AddItem",
                &vcart::AddLineItem {
                    user_id: "alice".into(),
                    product_id: "apple".into(),
                    name: "Apple".into(),
                    quantity: 2,
                },
            )),
            msg(&ve::command(
                2,
                "alice",
                "GetCart",
                &vcart::GetShoppingCart {
                    user_id: "alice".into(),
                },
            )),
            msg(&ve::command(
                3,
                "alice",
                "RemoveCart",
                &vcart::RemoveShoppingCart {
                    user_id: "alice".into(),
                },
            )),
        ],
    );
    use tck::valueentity as tve;
    let ve_request = |actions: Vec<tve::request_action::Action>| tve::Request {
        id: "tck-1".into(),
        actions: actions
            .into_iter()
            .map(|a| tve::RequestAction { action: Some(a) })
            .collect(),
    };
    stream(
        "ve-tck-update-delete",
        Kind::ValueEntity,
        vec![
            msg(&ve::init_with_state(
                tve::value_entity_tck_model::SERVICE_NAME,
                "tck-1",
                &tve::Persisted { value: "S".into() },
            )),
            msg(&ve::command(
                1,
                "tck-1",
                "Process",
                &ve_request(vec![tve::request_action::Action::Update(tve::Update {
                    value: "one".into(),
                })]),
            )),
            msg(&ve::command(
                2,
                "tck-1",
                "Process",
                &ve_request(vec![
                    tve::request_action::Action::Delete(tve::Delete {}),
                    tve::request_action::Action::Effect(tve::Effect {
                        id: "x".into(),
                        synchronous: false,
                    }),
                ]),
            )),
        ],
    );

    use tck::crdt as tcrdt;
    let update = |u: tcrdt::update::Update| tcrdt::Request {
        id: String::new(),
        actions: vec![tcrdt::RequestAction {
            action: Some(tcrdt::request_action::Action::Update(tcrdt::Update {
                update: Some(u),
                write_consistency: 0,
            })),
        }],
    };
    let crdt_svc = tcrdt::crdt_tck_model::SERVICE_NAME;
    for (name, id, delta, change) in [
        (
            "crdt-gcounter",
            "GCounter-1",
            crdt::gcounter(3),
            tcrdt::update::Update::Gcounter(tcrdt::GCounterUpdate { increment: 2 }),
        ),
        (
            "crdt-pncounter",
            "PNCounter-1",
            crdt::pncounter(-3),
            tcrdt::update::Update::Pncounter(tcrdt::PnCounterUpdate { change: 5 }),
        ),
        (
            "crdt-gset",
            "GSet-1",
            crdt::gset(&["a", "b"]),
            tcrdt::update::Update::Gset(tcrdt::GSetUpdate { add: "c".into() }),
        ),
    ] {
        let mut request = update(change);
        request.id = id.into();
        stream(
            name,
            Kind::Crdt,
            vec![
                msg(&crdt::init_with_delta(crdt_svc, id, delta.clone())),
                msg(&crdt::command(1, id, "Process", &request)),
                msg(&crdt::delta(delta)),
                msg(&crdt::command(2, id, "Process", &request)),
            ],
        );
    }
    let mut vote = update(tcrdt::update::Update::Vote(tcrdt::VoteUpdate {
        self_vote: true,
    }));
    vote.id = "Vote-1".into();
    stream(
        "crdt-vote-delete",
        Kind::Crdt,
        vec![
            msg(&crdt::init(crdt_svc, "Vote-1")),
            msg(&crdt::command(1, "Vote-1", "Process", &vote)),
            msg(&crdt::delete()),
        ],
    );
    use counters::proto::com::example::counters as ctr;
    stream(
        "crdt-scores-up-down",
        Kind::Crdt,
        vec![
            msg(&crdt::init(ctr::scores::SERVICE_NAME, "item-1")),
            msg(&crdt::command(
                1,
                "item-1",
                "Up",
                &ctr::ScoreVote {
                    item: "item-1".into(),
                    consistency: 1,
                },
            )),
            msg(&crdt::command(
                2,
                "item-1",
                "Down",
                &ctr::ScoreVote {
                    item: "item-1".into(),
                    consistency: 9,
                },
            )),
            msg(&crdt::stream_cancelled(3, "item-1")),
        ],
    );
}

fn payload_seed(name: &str, any: &payload::Any) {
    let mut bytes = any.type_url.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(&any.value);
    write("payload", name, &bytes);
}

fn payload_seeds() {
    payload_seed("string", &"héllo".to_owned().to_any());
    payload_seed("bytes", &vec![0u8, 1, 255].to_any());
    payload_seed("int32", &(-1i32).to_any());
    payload_seed("int64", &i64::MAX.to_any());
    payload_seed("bool", &true.to_any());
    payload_seed("float", &1.5f32.to_any());
    payload_seed("double", &f64::MIN_POSITIVE.to_any());
    payload_seed("empty", &payload::empty());
    payload_seed(
        "timestamp",
        &payload::encode(&prost_types::Timestamp {
            seconds: 7,
            nanos: 9,
        }),
    );
    payload_seed(
        "cart",
        &payload::encode(&cart::Cart {
            items: vec![cart::LineItem {
                product_id: "p".into(),
                name: "n".into(),
                quantity: 2,
            }],
        }),
    );
    payload_seed(
        "json-order",
        &Json(serde_json::json!({
            "id": "o-1", "quantity": 3, "tags": ["a"], "price": 2.5,
            "lines": [{"id": "l", "quantity": 1, "price": null, "lines": null}]
        }))
        .to_any(),
    );
    let mut json = Json(serde_json::json!({"id": "o", "quantity": 1})).to_any();
    json.type_url = payload::json::type_url("Order");
    payload_seed("json-order-named", &json);
    let mut other_host = payload::encode(&AddLineItem::default());
    other_host.type_url = format!("example.com/{}", AddLineItem::full_name());
    payload_seed("other-host", &other_host);
}

fn http_seed(name: &str, method: u8, path: &str, query: &str, content_type: &str, body: &str) {
    let mut bytes = vec![method];
    for (i, field) in [path, query, content_type, body].iter().enumerate() {
        if i > 0 {
            bytes.push(0);
        }
        bytes.extend_from_slice(field.as_bytes());
    }
    write("http_transcode", name, &bytes);
}

fn http_seeds() {
    // Method bytes index the target's table: 0 GET, 1 POST, 2 PUT, 3 PATCH, 4 DELETE.
    const JSON: &str = "application/json";
    http_seed(
        "get-thing",
        0,
        "/things/a%20b",
        "num=3&labels=x&labels=y&inner.name=n",
        "",
        "",
    );
    http_seed("get-thing-inner", 0, "/things/x/inner", "", "", "");
    http_seed(
        "put-inner",
        2,
        "/things/x/inner",
        "note=hi",
        "application/json; charset=utf-8",
        r#"{"name":"n","count":2,"tags":["t"]}"#,
    );
    http_seed(
        "patch-thing",
        3,
        "/things/x",
        "",
        JSON,
        r#"{"big":"9007199254740993","ratio":1.5,"blob":"AAE=","color":"RED","attrs":{"k":"v"},"maybe":0,"text":"t"}"#,
    );
    http_seed("delete-thing", 4, "/things/x", "flag=true", "", "");
    http_seed(
        "typed",
        0,
        "/typed/-1/TRUE/123/2.5/AAE%3D/7/1e3",
        "",
        "",
        "",
    );
    http_seed("glob", 0, "/glob/prefix/p1/a/b:list", "", "", "");
    http_seed(
        "plain",
        1,
        "/devproxy.httptest.Things/Plain",
        "",
        JSON,
        "{}",
    );
    http_seed(
        "cart-add",
        1,
        "/cart/u1/items/add",
        "",
        JSON,
        r#"{"productId":"p","name":"n","quantity":2}"#,
    );
    http_seed("cart-get", 0, "/carts/u1", "", "", "");
    http_seed("cart-remove", 1, "/cart/u1/items/p1/remove", "", JSON, "{}");

    let templates = [
        ("things", "/things/{id}", "/things/a%2Fb"),
        (
            "nested",
            "/v1/{name=shelves/*}/books/{id}:get",
            "/v1/shelves/s1/books/7:get",
        ),
        ("multi", "/files/{path=**}", "/files/a/b/c.txt"),
        ("verb", "/files/**:list", "/files/x/y:list"),
        ("dotted", "/a/{x}/{y.z=*}/c", "/a/1/2/c"),
        ("duplicate", "/{x}/{x}", "/1/2"),
        ("unclosed", "/a/{x", "/a/1"),
    ];
    for (name, template, path) in templates {
        write(
            "http_template",
            name,
            format!("{template}\0{path}").as_bytes(),
        );
    }
}

/// The specs the samples and the TCK adapter answer discovery with, over gRPC.
async fn spec_seeds() {
    let servers = [
        (
            "shopping-cart",
            shopping_cart::register(cloudstate_sdk::CloudState::new(), 5),
        ),
        (
            "value-cart",
            value_shopping_cart::register(cloudstate_sdk::CloudState::new()),
        ),
        (
            "counters",
            counters::register(cloudstate_sdk::CloudState::new()),
        ),
        ("tck", tck_adapter::server()),
    ];
    for (name, server) in servers {
        let server = TestServer::start(server).await;
        let spec = server
            .driver()
            .await
            .discover(cloudstate_devproxy::proxy_info())
            .await
            .expect("discover answers");
        write("spec_validation", name, &spec.encode_to_vec());
    }
}

#[tokio::main]
async fn main() {
    stream_seeds();
    payload_seeds();
    http_seeds();
    spec_seeds().await;
}
