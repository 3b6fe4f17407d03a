//! Sends event webhooks (`opencode_core::webhooks`) after the response: each event is a
//! background task that tries the receiver up to four times (again after 0.5, 2 and 8 s) while
//! it times out or answers anything but 2xx, every attempt under the same `webhook-id` and
//! signed at its own time. A webhook never delays or fails the request; a lost one is logged
//! (without the URL or the secret).

use std::rc::Rc;

use serde_json::Value;

use opencode_core::webhooks::{self, EventType, Webhooks};

use crate::executor::with_timeout;
use crate::host::Host;
use crate::log::{self, Field};

/// The longest one attempt may take.
const ATTEMPT_TIMEOUT_MS: u64 = 4_000;
/// The waits before the second, third and fourth attempts (within Workers' 30 s after a
/// response).
const BACKOFF_MS: [u64; 3] = [500, 2_000, 8_000];

/// Sends `event` with `data`, after the response, if the receiver wants it.
pub fn send<H: Host>(host: &H, hooks: Option<&Rc<Webhooks>>, event: EventType, data: Value) {
    let Some(hooks) = hooks.filter(|hooks| hooks.wants(event)) else { return };
    let mut id = [0u8; 16];
    host.random_bytes(&mut id);
    let id = format!("msg_{}", opencode_core::hex(&id));
    let body = webhooks::body(event, &log::rfc3339(host.now_ms()), data);
    let (task_host, hooks) = (host.clone(), Rc::clone(hooks));
    host.spawn_background(Box::pin(async move { deliver(&task_host, &hooks, event, &id, &body).await }));
}

async fn deliver<H: Host>(host: &H, hooks: &Webhooks, event: EventType, id: &str, body: &str) {
    let mut problem = String::new();
    for attempt in 0..=BACKOFF_MS.len() {
        if let Some(wait) = attempt.checked_sub(1).and_then(|i| BACKOFF_MS.get(i)) {
            host.sleep(*wait).await;
        }
        let request = match hooks.request(id, host.now_ms() / 1000, body) {
            Ok(request) => request,
            Err(err) => {
                problem = err.to_string();
                break;
            }
        };
        problem = match with_timeout(host, ATTEMPT_TIMEOUT_MS, host.fetch(request)).await {
            Some(Ok(response)) if response.status().is_success() => return,
            Some(Ok(response)) => format!("the receiver answered {}", response.status().as_u16()),
            Some(Err(err)) => opencode_core::redact::redact(&err.to_string()).into_owned(),
            None => format!("no answer within {ATTEMPT_TIMEOUT_MS} ms"),
        };
    }
    let fields =
        [("event", Field::Text(event.as_str())), ("webhook_id", Field::Text(id)), ("error", Field::Text(&problem))];
    log::warn(host, "webhook not delivered", &fields);
}
