//! `Host::spawn_background`: the response goes out at once and the task finishes afterwards,
//! on the same instance (post-return work).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use std::time::{Duration, Instant};

use common::{probe_manifest, scratch, SpinHost};

#[test]
fn background_tasks_run_after_the_response_is_sent() {
    let dir = scratch("background");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    let start = Instant::now();
    let response = host.get("/background/default/job?ms=600");
    assert_eq!(response.status, 202);
    assert!(start.elapsed() < Duration::from_millis(500), "the response waited for the task: {:?}", start.elapsed());
    assert_eq!(host.get("/kv/default/job").status, 404, "the task ran before its sleep");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = host.get("/kv/default/job");
        if got.status == 200 {
            assert_eq!(got.text(), "done");
            break;
        }
        assert!(Instant::now() < deadline, "the background task never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
}
