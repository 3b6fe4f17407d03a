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

/// Most parts an upload may have.
const MAX_PARTS: usize = 32;

/// The `file` part of a multipart body: its name and its text (a text or markdown file).
pub fn read_upload(parts: &http::request::Parts, body: &[u8]) -> Result<Upload, ApiError> {
    let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (essence, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    let boundary = match param(params, "boundary") {
        Some(boundary) if essence.trim().eq_ignore_ascii_case("multipart/form-data") && !boundary.is_empty() => {
            boundary
        }
        _ => return Err(ApiError::InvalidRequest("the upload must be `multipart/form-data` with a boundary".into())),
    };
    for part in form_parts(body, &boundary)? {
        let (disposition, type_params) = (part.header("content-disposition"), part.header("content-type"));
        let params = disposition.and_then(|d| d.split_once(';')).map_or("", |(_, params)| params);
        if param(params, "name").as_deref() != Some("file") {
            continue;
        }
        let filename: String =
            param(params, "filename").unwrap_or_else(|| "upload.txt".into()).chars().take(256).collect();
        let text = String::from_utf8(part.content.to_vec())
            .map_err(|_| ApiError::param("file", "`file` must be a UTF-8 text or markdown file".into()))?;
        let declared = type_params.map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let lower = filename.to_ascii_lowercase();
        let markdown =
            declared.as_deref() == Some("text/markdown") || lower.ends_with(".md") || lower.ends_with(".markdown");
        return Ok(Upload { filename, text, markdown });
    }
    Err(ApiError::param("file", "the upload needs a `file` part".into()))
}

/// One part of a `multipart/form-data` body.
struct FormPart<'a> {
    headers: Vec<(&'a str, &'a str)>,
    content: &'a [u8],
}

impl FormPart<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }
}

/// The parts of a `multipart/form-data` body (RFC 7578, RFC 2046 section 5.1), read whole:
/// each `--boundary` line opens a part, its headers end at a blank line, its content at the
/// next boundary's line break, and `--boundary--` ends the body. Written here rather than taken
/// from multer, a streaming parser that cost the gateway 22 KiB gzipped for one seed endpoint.
fn form_parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<FormPart<'a>>, ApiError> {
    let malformed = |why: &str| ApiError::InvalidRequest(format!("the multipart body is malformed: {why}"));
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let start = find(body, delimiter.as_bytes(), 0).ok_or_else(|| malformed("no boundary line"))?;
    let mut at = start.saturating_add(delimiter.len());
    let mut parts = Vec::new();
    loop {
        let rest = body.get(at..).unwrap_or_default();
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the line break that ends the boundary line.
        let line_end = find(body, b"\r\n", at).ok_or_else(|| malformed("a boundary line does not end"))?;
        let headers_end = find(body, b"\r\n\r\n", line_end).ok_or_else(|| malformed("a part's headers do not end"))?;
        let content_start = headers_end.saturating_add(4);
        let content_end =
            find(body, next_delimiter.as_bytes(), headers_end).ok_or_else(|| malformed("a part does not end"))?;
        let headers = std::str::from_utf8(body.get(line_end.saturating_add(2)..headers_end).unwrap_or_default())
            .map_err(|_| malformed("a part's headers are not text"))?
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim(), value.trim()))
            .collect();
        let content = body.get(content_start..content_end).unwrap_or_default();
        parts.push(FormPart { headers, content });
        if parts.len() > MAX_PARTS {
            return Err(malformed(&format!("more than {MAX_PARTS} parts")));
        }
        at = content_end.saturating_add(next_delimiter.len());
    }
}

/// Where `needle` first occurs in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let tail = haystack.get(from..)?;
    if needle.is_empty() {
        return Some(from);
    }
    tail.windows(needle.len()).position(|window| window == needle).map(|i| i.saturating_add(from))
}

/// A header parameter's value (`; name=value` or `; name="quoted \"value\""`).
fn param(params: &str, name: &str) -> Option<String> {
    let mut rest = params;
    loop {
        let (key, after) = rest.trim_start_matches([';', ' ', '\t']).split_once('=')?;
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next()? {
                        (_, '\\') => value.push(chars.next()?.1),
                        (i, '"') => break i,
                        (_, c) => value.push(c),
                    }
                };
                (value, quoted.get(end.saturating_add(1)..).unwrap_or_default())
            }
            None => {
                let end = after.find(';').unwrap_or(after.len());
                (after.get(..end).unwrap_or_default().trim().to_owned(), after.get(end..).unwrap_or_default())
            }
        };
        if key.trim().eq_ignore_ascii_case(name) {
            return Some(value);
        }
        rest = next;
    }
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

    #[test]
    fn the_file_part_is_read_with_its_name_and_kind() {
        let body = multipart("file", "Guide.MD", "application/octet-stream", "# Title\nText.");
        let upload = read_upload(&parts("multipart/form-data; boundary=XyZ"), &body).unwrap();
        assert_eq!(upload, Upload { filename: "Guide.MD".into(), text: "# Title\nText.".into(), markdown: true });
        let plain = multipart("file", "notes.txt", "text/plain", "Plain.");
        assert!(!read_upload(&parts("Multipart/Form-Data; boundary=\"XyZ\""), &plain).unwrap().markdown);
    }

    #[test]
    fn bodies_without_a_text_file_are_refused() {
        let err = read_upload(&parts("application/json"), b"{}").unwrap_err();
        assert!(err.to_string().contains("multipart/form-data"), "{err}");
        let other = multipart("attachment", "a.txt", "text/plain", "x");
        let err = read_upload(&parts("multipart/form-data; boundary=XyZ"), &other).unwrap_err();
        assert_eq!(err.param_name(), Some("file"));
        let binary = Bytes::from(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n\xff\xfe\r\n--XyZ--\r\n".to_vec(),
        );
        let err = read_upload(&parts("multipart/form-data; boundary=XyZ"), &binary).unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
        for cut in ["--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nno end", "no boundary at all"] {
            let err = read_upload(&parts("multipart/form-data; boundary=XyZ"), cut.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("malformed"), "{cut}: {err}");
        }
    }

    #[test]
    fn parameters_read_quoted_escaped_and_bare_values() {
        let params = "; name=\"file\"; filename=\"my \\\"notes\\\";v2.md\"; size=12";
        assert_eq!(param(params, "NAME").as_deref(), Some("file"));
        assert_eq!(param(params, "filename").as_deref(), Some("my \"notes\";v2.md"));
        assert_eq!(param(params, "size").as_deref(), Some("12"));
        assert_eq!(param(params, "missing"), None);
        assert_eq!(param("; name=\"unterminated", "name"), None);
    }
}
