//! JSON frames from the network (WebSocket text messages):
//! `Codec::Json.decode_client` / `decode_server` never panic, and every
//! frame they accept survives encode → decode in both codecs.
#![no_main]

mod codec_checks;

use libfuzzer_sys::fuzz_target;
use tern_proto::Codec;

fuzz_target!(|data: &[u8]| {
    codec_checks::check(Codec::Json, data);
});
