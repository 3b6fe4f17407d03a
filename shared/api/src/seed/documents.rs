//! The seed's documents, answered by the gateway over the knowledge function:
//! `POST /api/v1/documents/upload` (a `multipart/form-data` body whose `file` part is a text or
//! markdown file) → `{"task_id", "filename", "status", "message"}`, and
//! `GET /api/v1/documents/status/{task_id}` → `{"task_id", "status", "progress", "message"}`.
//! The file is indexed before the upload answers (the seed queued it), so its task is the
//! document itself, id `task_id`, in the caller's tenant; its status is whether it is there.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::error::ApiError;

pub const UPLOAD: &str = "/api/v1/documents/upload";
pub const STATUS: &str = "/api/v1/documents/status/";

/// A file as it was uploaded.
#[derive(Debug, PartialEq, Eq)]
pub struct Upload {
    pub filename: String,
    pub text: String,
    pub markdown: bool,
}

/// The `file` part of a multipart body: its name and its text (a text or markdown file).
pub async fn read_upload(parts: &http::request::Parts, body: Bytes) -> Result<Upload, ApiError> {
    let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| ApiError::InvalidRequest("the upload must be `multipart/form-data` with a boundary".into()))?;
    let mut multipart = multer::Multipart::new(futures::stream::once(async move { Ok::<_, ApiError>(body) }), boundary);
    let invalid = |err: multer::Error| ApiError::InvalidRequest(format!("the multipart body is malformed: {err}"));
    while let Some(field) = multipart.next_field().await.map_err(invalid)? {
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().unwrap_or("upload.txt").chars().take(256).collect::<String>();
        let declared = field.content_type().map(|m| m.essence_str().to_owned());
        let bytes = field.bytes().await.map_err(invalid)?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::param("file", "`file` must be a UTF-8 text or markdown file".into()))?;
        let lower = filename.to_ascii_lowercase();
        let markdown =
            declared.as_deref() == Some("text/markdown") || lower.ends_with(".md") || lower.ends_with(".markdown");
        return Ok(Upload { filename, text, markdown });
    }
    Err(ApiError::param("file", "the upload needs a `file` part".into()))
}

/// The knowledge function's body for an upload: the document `task_id`, the file's name in its
/// metadata.
pub fn document(task_id: &str, upload: &Upload) -> Bytes {
    let format = if upload.markdown { "markdown" } else { "text" };
    let body =
        json!({ "id": task_id, "text": upload.text, "format": format, "metadata": { "filename": upload.filename } });
    Bytes::from(body.to_string())
}

/// The upload's answer.
pub fn uploaded(task_id: &str, filename: &str) -> Value {
    json!({ "task_id": task_id, "filename": filename, "status": "completed", "message": "Indexed" })
}

/// A task's status: the document is there, so its indexing is done.
pub fn completed(task_id: &str) -> Value {
    json!({ "task_id": task_id, "status": "completed", "progress": 1.0, "message": "Indexed" })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parts(content_type: &str) -> http::request::Parts {
        http::Request::post(UPLOAD).header("content-type", content_type).body(()).unwrap().into_parts().0
    }

    fn multipart(name: &str, filename: &str, content_type: &str, content: &str) -> Bytes {
        Bytes::from(format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n{content}\r\n--XyZ--\r\n"
        ))
    }

    #[tokio::test]
    async fn the_file_part_is_read_with_its_name_and_kind() {
        let body = multipart("file", "Guide.MD", "application/octet-stream", "# Title\nText.");
        let upload = read_upload(&parts("multipart/form-data; boundary=XyZ"), body).await.unwrap();
        assert_eq!(upload, Upload { filename: "Guide.MD".into(), text: "# Title\nText.".into(), markdown: true });
        let plain = multipart("file", "notes.txt", "text/plain", "Plain.");
        assert!(!read_upload(&parts("multipart/form-data; boundary=XyZ"), plain).await.unwrap().markdown);
    }

    #[tokio::test]
    async fn bodies_without_a_text_file_are_refused() {
        let err = read_upload(&parts("application/json"), Bytes::from("{}")).await.unwrap_err();
        assert!(err.to_string().contains("multipart/form-data"), "{err}");
        let other = multipart("attachment", "a.txt", "text/plain", "x");
        let err = read_upload(&parts("multipart/form-data; boundary=XyZ"), other).await.unwrap_err();
        assert_eq!(err.param_name(), Some("file"));
        let binary = Bytes::from(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n\xff\xfe\r\n--XyZ--\r\n".to_vec(),
        );
        let err = read_upload(&parts("multipart/form-data; boundary=XyZ"), binary).await.unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }
}
