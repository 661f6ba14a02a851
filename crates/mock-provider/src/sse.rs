//! Event-stream bodies with pacing, malformed events and mid-stream cuts.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;

use crate::scenario::Scenario;

/// One SSE event, already framed (ends with a blank line).
#[derive(Debug, Clone)]
pub struct Frame {
    pub text: String,
    /// Part of the stream's ending (finish chunk / usage / [DONE], message_delta / message_stop).
    pub terminal: bool,
}

impl Frame {
    pub fn body(text: String) -> Self {
        Self {
            text,
            terminal: false,
        }
    }

    pub fn terminal(text: String) -> Self {
        Self {
            text,
            terminal: true,
        }
    }
}

struct State {
    frames: VecDeque<Frame>,
    first: bool,
    chunk_delay: Duration,
    cut: bool,
}

/// Applies `malformed` and `cut` to the frames and builds a streaming `text/event-stream` response.
pub fn response(mut frames: Vec<Frame>, malformed: Option<Frame>, sc: &Scenario) -> Response {
    if let (true, Some(bad)) = (sc.malformed, malformed) {
        let at = frames.len().min(1);
        frames.insert(at, bad);
    }
    let cut = match sc.cut {
        Some(n) => {
            let body_len = frames.iter().take_while(|f| !f.terminal).count();
            frames.truncate(n.min(body_len));
            true
        }
        None => false,
    };
    let state = State {
        frames: frames.into(),
        first: true,
        chunk_delay: Duration::from_millis(sc.chunk_delay_ms),
        cut,
    };
    let body = stream::unfold(state, |mut st| async move {
        if let Some(frame) = st.frames.pop_front() {
            if !st.first && !st.chunk_delay.is_zero() {
                tokio::time::sleep(st.chunk_delay).await;
            }
            st.first = false;
            Some((Ok::<Bytes, io::Error>(Bytes::from(frame.text)), st))
        } else if st.cut {
            st.cut = false;
            // Let hyper flush what was sent before the connection is aborted.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "mock: stream cut",
                )),
                st,
            ))
        } else {
            None
        }
    });
    let mut resp = (StatusCode::OK, Body::from_stream(body)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
