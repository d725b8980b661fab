//! A type byte and a payload straight into the message parser (random bytes rarely pass the
//! CRC, so `deframe_parse` alone would seldom reach it); batches have their points iterated.
#![no_main]

use flyscan_protocol::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&msg_type, payload)) = data.split_first() else {
        return;
    };
    if let Ok(Message::PointBatch(b)) = Message::parse(msg_type, payload) {
        let n = b.points().count();
        assert!(n <= usize::from(b.n_points) + 1);
    }
});
