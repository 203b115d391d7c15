//! Generates the chat services' messages, their typed CRDT entity traits and
//! the descriptor set.

use cloudstate_build::Crdt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cloudstate_build::configure()
        .crdt(Crdt::new("com.example.chat.Presence"))
        .crdt(Crdt::new("com.example.chat.Friends"))
        .compile_protos(&["chat/presence.proto", "chat/friends.proto"], &["proto"])?;
    Ok(())
}
