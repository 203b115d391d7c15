#[cloudstate_sdk::event_sourced]
fn added() {}

#[cloudstate_sdk::event_sourced]
struct CartEntity;

fn main() {
    added();
    let _ = CartEntity;
}
