//! The counters user function and a dev proxy in front of it, both on port 0.

use cloudstate_devproxy::local::Local;
use cloudstate_sdk::CloudState;

pub(crate) async fn start() -> Local {
    Local::start(counters::register(CloudState::new()))
        .await
        .expect("the dev proxy starts")
}
