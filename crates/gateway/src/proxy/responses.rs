//! What a Responses API request needs from the gateway when a provider without the Responses API
//! answers it: its earlier conversation (`previous_response_id`), the id and `store` its answer
//! carries, the shape of its custom / namespaced tool calls (`Reply`), and keeping the
//! conversation for the next turn once the answer is complete.
//!
//! Also, for every client dialect: which of the request's tools the target cannot take
//! (`dropped_tools`).

use super::conversations::ConversationStore;
use crate::error::GatewayError;
use ekai_wire::canonical::{
    ContentBlock, Dialect, Message, Request, Response as CanonicalResponse, Role, Tool,
};
use ekai_wire::dialect::openai_responses::{self, Reply};
use std::sync::Arc;

/// One Responses request on the canonical path.
pub(crate) struct Turn {
    pub reply: Reply,
    /// The conversation to keep under `reply.id` once answered (`store` true): earlier turns and
    /// this request's input, without its instructions.
    history: Option<Arc<Vec<Message>>>,
    owner: Option<String>,
}

/// The 400 OpenAI answers for an id it does not know, with its `code`.
fn not_found(id: &str) -> GatewayError {
    GatewayError::invalid(format!("Previous response with id '{id}' not found."))
        .with_param(Some("previous_response_id".into()))
        .with_code("previous_response_not_found")
}

/// A new response id, `resp_` and 48 hex digits like OpenAI's.
fn new_response_id() -> Result<String, GatewayError> {
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw)
        .map_err(|e| GatewayError::internal(format!("no randomness for a response id: {e}")))?;
    let mut id = String::with_capacity(53);
    id.push_str("resp_");
    for b in raw {
        id.push_str(&format!("{b:02x}"));
    }
    Ok(id)
}

/// Whether this raw Responses body continues a conversation the gateway keeps (so it must take
/// the canonical path even to OpenAI, which does not know the gateway's ids).
pub(crate) fn continues_kept(store: &ConversationStore, owner: Option<&str>, body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Continuation {
        previous_response_id: Option<String>,
    }
    // Cheap test first: most requests carry no such field.
    if !body
        .windows(b"previous_response_id".len())
        .any(|w| w == b"previous_response_id")
    {
        return false;
    }
    serde_json::from_slice::<Continuation>(body)
        .ok()
        .and_then(|c| c.previous_response_id)
        .is_some_and(|id| store.contains(owner, &id))
}

/// Resolves `previous_response_id` (its conversation is put before this request's messages) and
/// prepares what the answer needs. Called once per request, on the freshly parsed request (before
/// any system prefix of the client's policy is added).
pub(crate) fn begin(
    req: &mut Request,
    store: &ConversationStore,
    owner: Option<&str>,
) -> Result<Turn, GatewayError> {
    let state = openai_responses::request_state(req);
    let mut reply = Reply::for_request(req);
    let mut earlier = 0;
    if let Some(id) = &state.previous_response_id {
        let conversation = store.get(owner, id).ok_or_else(|| not_found(id))?;
        earlier = conversation.len();
        req.messages
            .splice(0..0, conversation.iter().cloned())
            .for_each(drop);
        // Resolved here: no upstream may see the gateway's id.
        if let Some(extra) = req.extra.as_mut() {
            extra.fields.remove("previous_response_id");
        }
    }
    let history = if state.store {
        reply.id = Some(new_response_id()?);
        // System / developer messages that opened `input` are part of the conversation;
        // `instructions` are not (a follow-up brings its own).
        let input_system: Vec<ContentBlock> = req
            .system
            .iter()
            .skip(openai_responses::instruction_parts(req))
            .map(|p| ContentBlock::Text(p.clone()))
            .collect();
        let mut h = Vec::with_capacity(req.messages.len() + 2);
        h.extend(req.messages.iter().take(earlier).cloned());
        if !input_system.is_empty() {
            h.push(Message {
                role: Role::System,
                content: input_system,
                name: None,
            });
        }
        h.extend(req.messages.iter().skip(earlier).cloned());
        Some(Arc::new(h))
    } else {
        None
    };
    Ok(Turn {
        reply,
        history,
        owner: owner.map(str::to_string),
    })
}

impl Turn {
    /// Keeps the conversation with `answer` appended, when the client asked for it to be stored.
    pub fn keep(&self, store: &ConversationStore, answer: &CanonicalResponse) {
        let (Some(history), Some(id)) = (&self.history, &self.reply.id) else {
            return;
        };
        let mut messages = Vec::with_capacity(history.len() + 1);
        messages.extend(history.iter().cloned());
        let content: Vec<ContentBlock> = answer
            .content
            .iter()
            .filter(|b| !matches!(b, ContentBlock::Text(t) if t.text.is_empty()))
            .cloned()
            .collect();
        if !content.is_empty() {
            messages.push(Message {
                role: Role::Assistant,
                content,
                name: None,
            });
        }
        store.put(id.clone(), self.owner.clone(), messages);
    }

    /// `keep` for a stream: run by the relay once the answer completed.
    pub fn keeper(&self, store: &Arc<ConversationStore>) -> Option<super::relay::OnComplete> {
        self.history.as_ref()?;
        let turn = Turn {
            reply: Reply {
                id: self.reply.id.clone(),
                ..Reply::default()
            },
            history: self.history.clone(),
            owner: self.owner.clone(),
        };
        let store = Arc::clone(store);
        Some(Box::new(move |answer| turn.keep(&store, answer)))
    }
}

/// The tools of `req` that a `target`-dialect provider cannot take (hosted tools of another API:
/// OpenAI's `web_search`, `local_shell`, `tool_search`, `mcp`…, Anthropic's server tools), named by
/// their type; the conversion leaves them out.
pub(crate) fn dropped_tools(req: &Request, target: Dialect) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tool in &req.tools {
        let Tool::Unknown { dialect, value } = tool else {
            continue;
        };
        if *dialect == target {
            continue;
        }
        let label = value
            .get("type")
            .or_else(|| value.get("name"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .or_else(|| value.as_object().and_then(|o| o.keys().next().cloned()))
            .unwrap_or_else(|| "unknown".into());
        if !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Request {
        openai_responses::parse_request(body.as_bytes()).unwrap()
    }

    #[test]
    fn continuation_prepends_the_kept_conversation_without_instructions() {
        let store = ConversationStore::default();
        let mut first = parse(
            r#"{"model":"m","instructions":"be brief","input":[
                {"role":"developer","content":"dev note"},
                {"role":"user","content":"hi"}]}"#,
        );
        let turn = begin(&mut first, &store, Some("k")).unwrap();
        let id = turn.reply.id.clone().unwrap();
        assert!(id.starts_with("resp_") && id.len() == 53, "{id}");
        assert!(turn.reply.store);
        let answer = CanonicalResponse {
            content: vec![ContentBlock::text("hello!")],
            ..CanonicalResponse::default()
        };
        turn.keep(&store, &answer);
        let kept = store.get(Some("k"), &id).unwrap();
        let roles: Vec<Role> = kept.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::System, Role::User, Role::Assistant]);
        assert_eq!(kept[0].content, vec![ContentBlock::text("dev note")]);

        let body = format!(
            r#"{{"model":"m","instructions":"new","previous_response_id":"{id}","input":"more"}}"#
        );
        assert!(continues_kept(&store, Some("k"), body.as_bytes()));
        assert!(!continues_kept(&store, Some("other"), body.as_bytes()));
        let mut second = parse(&body);
        let turn2 = begin(&mut second, &store, Some("k")).unwrap();
        assert_eq!(second.messages.len(), 4);
        assert_eq!(second.system.len(), 1);
        assert_eq!(second.system[0].text, "new");
        assert_eq!(
            turn2.reply.previous_response_id.as_deref(),
            Some(id.as_str())
        );
        assert!(
            openai_responses::request_state(&second)
                .previous_response_id
                .is_none()
        );

        // Unknown ids and other keys' ids are refused the way OpenAI refuses them.
        let mut third = parse(&body);
        let e = begin(&mut third, &store, Some("intruder")).err().unwrap();
        assert_eq!(e.status, 400);
        assert_eq!(e.code, Some("previous_response_not_found"));
        assert_eq!(e.param.as_deref(), Some("previous_response_id"));
        assert!(e.message.contains(&id), "{}", e.message);

        // store:false keeps nothing and gets no gateway id.
        let mut off = parse(r#"{"model":"m","store":false,"input":"x"}"#);
        let t = begin(&mut off, &store, Some("k")).unwrap();
        assert!(
            t.reply.id.is_none() && t.keeper(&Arc::new(ConversationStore::default())).is_none()
        );
    }

    #[test]
    fn hosted_tools_of_other_apis_are_named() {
        let req = parse(
            r#"{"model":"m","input":"x","tools":[{"type":"web_search"},{"type":"function","name":"f"},
                {"type":"local_shell"},{"type":"web_search"},{"type":"custom","name":"apply_patch"}]}"#,
        );
        assert_eq!(
            dropped_tools(&req, Dialect::Anthropic),
            ["web_search", "local_shell"]
        );
        assert!(dropped_tools(&req, Dialect::OpenAiResponses).is_empty());
    }
}
