//! The gRPC codec of the protocol services, server and client: prost, with
//! per-call buffers sized for protocol messages rather than tonic's default.
//!
//! tonic allocates an encode and a decode buffer for every call when it
//! starts, 8 KiB each by default, and keeps them for the call's life. An
//! entity stream lives as long as its entity (thousands may be idle at
//! once) and its messages are a few hundred bytes, so that is most of the
//! memory of an idle stream. The buffers still grow to any message's size.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// Initial size of each buffer of a call, bytes.
const BUFFER_SIZE: usize = 1024;
/// Encoded output gathered before it is handed to HTTP/2 (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// Prost encoding with [`BUFFER_SIZE`] buffers.
#[derive(Debug)]
pub(crate) struct ProtocolCodec<T, U>(PhantomData<fn(T) -> U>);

impl<T, U> Default for ProtocolCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
}

impl<T, U> Codec for ProtocolCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(settings())
    }
}
