//! Response bodies: whole, or a script of writes, pauses and an abrupt end.
//!
//! An abrupt end is a body error: hyper then closes the connection without writing the
//! rest of the message (no terminating chunk, or fewer bytes than `Content-Length`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as HttpBody, Frame};
use tokio::sync::mpsc;

pub(crate) type Body = BoxBody<Bytes, io::Error>;

/// A body sent at once.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// One thing a scripted body does.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Data(Bytes),
    Sleep(Duration),
    /// Close the connection mid-message.
    Abort,
}

/// How long to let hyper flush what it was given before the connection is cut, so a
/// client sees exactly the events sent before the cut.
const FLUSH_GRACE: Duration = Duration::from_millis(30);

/// A body that plays `steps` on its own task; it stops early when the client goes away.
pub(crate) fn scripted(steps: Vec<Step>) -> Body {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        for step in steps {
            match step {
                Step::Data(bytes) => {
                    if tx.send(Ok(bytes)).await.is_err() {
                        return;
                    }
                }
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::Abort => {
                    // Wait until hyper has taken every earlier frame, then give it time to write them.
                    let Ok(permit) = tx.reserve().await else {
                        return;
                    };
                    tokio::time::sleep(FLUSH_GRACE).await;
                    permit.send(Err(io::Error::other("provider-sim: connection cut")));
                    return;
                }
            }
        }
    });
    ChannelBody(rx).boxed()
}

struct ChannelBody(mpsc::Receiver<io::Result<Bytes>>);

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.0.poll_recv(cx).map(|item| item.map(|r| r.map(Frame::data)))
    }
}
