//! One replica's copy of a CRDT, as Akka Distributed Data holds it on a node.
