//! `GenerateContentRequest` ↔ canonical `Request`.
//!
//! Walked as `serde_json::Value`, like the Anthropic request, so a 400 names the offending field
//! (`contents[2].parts[0].functionCall.name`) and fields canonical has no name for survive in `extra`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::parts::{CallIds, Render, ensure_call_signature, parse_parts, render_blocks};
use super::{
    DIALECT, Obj, json_schema_out, lower_schema_types, missing, take_array, take_bool, take_f64,
    take_object, take_string, take_u32, wrong_type,
};
use crate::canonical::{
    ContentBlock, Extra, FunctionTool, Message, Reasoning, Request, ResponseFormat, Role, TextPart,
    Tool, ToolChoice, WireError,
};

/// The proto3 JSON mapping Google's APIs use accepts every field under its proto name
/// (`parameters_json_schema`) as well as lowerCamelCase, and the official `google-genai` SDK sends
/// the former for some fields. Field names are rewritten to lowerCamelCase here, except inside
/// values that are the caller's own JSON (function arguments and responses, schemas, labels), whose
/// keys are data.
fn camel_case_fields(v: &mut Value) {
    const FREE_FORM: &[&str] = &[
        "args",
        "response",
        "parameters",
        "parametersJsonSchema",
        "responseSchema",
        "responseJsonSchema",
        "labels",
    ];
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().filter(|k| k.contains('_')).cloned().collect();
            for k in keys {
                if let Some(val) = map.remove(&k) {
                    map.entry(to_camel(&k)).or_insert(val);
                }
            }
            for (k, val) in map.iter_mut() {
                if !FREE_FORM.contains(&k.as_str()) {
                    camel_case_fields(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(camel_case_fields),
        _ => {}
    }
}

fn to_camel(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut upper = false;
    for c in k.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses the body of `POST /v1beta/models/{model}:generateContent` (or `:streamGenerateContent`);
/// `model` comes from the URL. `stream` is left false: the gateway sets it from the method.
pub fn parse_request(body: &[u8], model: &str) -> Result<Request, WireError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| WireError::from_json(&e))?;
    camel_case_fields(&mut value);
    let Value::Object(mut obj) = value else {
        return Err(WireError::new("request body must be a JSON object"));
    };
    let mut req = Request {
        model: model.strip_prefix("models/").unwrap_or(model).to_string(),
        // Gemini streams always carry usageMetadata.
        stream_include_usage: true,
        ..Request::default()
    };
    let mut extra = Obj::new();

    // Either spelling: the REST docs use camelCase, and the proto JSON mapping accepts snake_case.
    let system = match obj.remove("systemInstruction") {
        Some(v) => Some(v),
        None => obj.remove("system_instruction"),
    };
    req.system = parse_system(system)?;

    let contents = take_array(&mut obj, "contents", "contents")?
        .ok_or_else(|| WireError::at("contents", "missing required field `contents`"))?;
    let mut ids = CallIds::default();
    for (i, content) in contents.into_iter().enumerate() {
        let path = format!("contents[{i}]");
        let Value::Object(mut content) = content else {
            return Err(wrong_type(&path, "an object", &content));
        };
        let role = match take_string(&mut content, "role", &format!("{path}.role"))?.as_deref() {
            // A single-turn request may omit the role; `function` is the old role of tool results.
            None | Some("user" | "function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(WireError::at(
                    format!("{path}.role"),
                    format!("unknown role `{other}`: expected `user` or `model`"),
                ));
            }
        };
        let parts_path = format!("{path}.parts");
        let parts = take_array(&mut content, "parts", &parts_path)?.unwrap_or_default();
        let mut blocks = Vec::with_capacity(parts.len());
        parse_parts(parts, &parts_path, &mut ids, &mut blocks)?;
        req.messages.push(Message {
            role,
            content: blocks,
            name: None,
        });
    }

    for (i, tool) in take_array(&mut obj, "tools", "tools")?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        parse_tool(tool, i, &mut req.tools)?;
    }
    if let Some(mut config) = take_object(&mut obj, "toolConfig", "toolConfig")? {
        if let Some(fcc) = take_object(
            &mut config,
            "functionCallingConfig",
            "toolConfig.functionCallingConfig",
        )? {
            match parse_function_calling(&fcc)? {
                Some(choice) => req.tool_choice = Some(choice),
                // VALIDATED and newer modes: kept for Gemini.
                None => {
                    config.insert("functionCallingConfig".into(), Value::Object(fcc));
                }
            }
        }
        if !config.is_empty() {
            extra.insert("toolConfig".into(), Value::Object(config));
        }
    }
    if let Some(config) = take_object(&mut obj, "generationConfig", "generationConfig")? {
        parse_generation_config(config, &mut req, &mut extra)?;
    }
    // safetySettings, cachedContent, labels, serviceTier, …
    extra.extend(obj);
    if !extra.is_empty() {
        req.extra = Some(Extra {
            dialect: DIALECT,
            fields: extra,
        });
    }
    Ok(req)
}

fn parse_system(value: Option<Value>) -> Result<Vec<TextPart>, WireError> {
    let parts = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => {
            return Ok(vec![TextPart {
                text: s,
                cache_control: None,
            }]);
        }
        Some(Value::Object(mut obj)) => {
            take_array(&mut obj, "parts", "systemInstruction.parts")?.unwrap_or_default()
        }
        Some(other) => return Err(wrong_type("systemInstruction", "an object", &other)),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let path = format!("systemInstruction.parts[{j}]");
        let Value::Object(mut part) = part else {
            return Err(wrong_type(&path, "an object", &part));
        };
        let text = take_string(&mut part, "text", &format!("{path}.text"))?.ok_or_else(|| {
            WireError::at(
                format!("{path}.text"),
                "system instruction parts must be text",
            )
        })?;
        if !text.is_empty() {
            out.push(TextPart {
                text,
                cache_control: None,
            });
        }
    }
    Ok(out)
}

fn parse_tool(value: Value, i: usize, out: &mut Vec<Tool>) -> Result<(), WireError> {
    let path = format!("tools[{i}]");
    let Value::Object(mut obj) = value else {
        return Err(wrong_type(&path, "an object", &value));
    };
    let decls_path = format!("{path}.functionDeclarations");
    if let Some(decls) = take_array(&mut obj, "functionDeclarations", &decls_path)? {
        for (k, decl) in decls.into_iter().enumerate() {
            let dpath = format!("{decls_path}[{k}]");
            let Value::Object(mut decl) = decl else {
                return Err(wrong_type(&dpath, "an object", &decl));
            };
            let name = take_string(&mut decl, "name", &format!("{dpath}.name"))?
                .ok_or_else(|| missing(&dpath, "name"))?;
            let parameters = match decl.remove("parametersJsonSchema") {
                Some(v) if !v.is_null() => v,
                _ => match decl.remove("parameters") {
                    Some(mut v) if !v.is_null() => {
                        lower_schema_types(&mut v);
                        v
                    }
                    _ => Value::Null,
                },
            };
            out.push(Tool::Function(FunctionTool {
                name,
                description: take_string(
                    &mut decl,
                    "description",
                    &format!("{dpath}.description"),
                )?,
                parameters,
                strict: None,
                cache_control: None,
            }));
        }
    }
    // googleSearch, codeExecution, urlContext, … (one tool object may name several).
    if !obj.is_empty() {
        out.push(Tool::Unknown {
            dialect: DIALECT,
            value: Value::Object(obj),
        });
    }
    Ok(())
}

fn parse_function_calling(fcc: &Obj) -> Result<Option<ToolChoice>, WireError> {
    let path = "toolConfig.functionCallingConfig";
    let mode = match fcc.get("mode") {
        None | Some(Value::Null) => "AUTO",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(wrong_type(&format!("{path}.mode"), "a string", other)),
    };
    let allowed: Vec<&str> = match fcc.get("allowedFunctionNames") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        Some(other) => {
            return Err(wrong_type(
                &format!("{path}.allowedFunctionNames"),
                "an array",
                other,
            ));
        }
    };
    Ok(match mode.to_ascii_uppercase().as_str() {
        "AUTO" | "MODE_UNSPECIFIED" => Some(ToolChoice::Auto),
        "NONE" => Some(ToolChoice::None),
        "ANY" => match allowed.as_slice() {
            [only] => Some(ToolChoice::Tool((*only).to_string())),
            _ => Some(ToolChoice::Required),
        },
        _ => None,
    })
}

fn parse_generation_config(
    mut config: Obj,
    req: &mut Request,
    extra: &mut Obj,
) -> Result<(), WireError> {
    const P: &str = "generationConfig";
    req.max_tokens = take_u32(
        &mut config,
        "maxOutputTokens",
        &format!("{P}.maxOutputTokens"),
    )?;
    req.temperature = take_f64(&mut config, "temperature", &format!("{P}.temperature"))?;
    req.top_p = take_f64(&mut config, "topP", &format!("{P}.topP"))?;
    req.top_k = take_u32(&mut config, "topK", &format!("{P}.topK"))?;
    if let Some(stops) = take_array(&mut config, "stopSequences", &format!("{P}.stopSequences"))? {
        for (k, s) in stops.into_iter().enumerate() {
            match s {
                Value::String(s) => req.stop_sequences.push(s),
                other => {
                    return Err(wrong_type(
                        &format!("{P}.stopSequences[{k}]"),
                        "a string",
                        &other,
                    ));
                }
            }
        }
    }
    let mime = take_string(
        &mut config,
        "responseMimeType",
        &format!("{P}.responseMimeType"),
    )?;
    let json_schema = config.remove("responseJsonSchema").filter(|v| !v.is_null());
    let openapi_schema = config.remove("responseSchema").filter(|v| !v.is_null());
    let schema = json_schema.or_else(|| {
        openapi_schema.map(|mut s| {
            lower_schema_types(&mut s);
            s
        })
    });
    req.response_format = match (mime.as_deref(), schema) {
        (Some("application/json"), Some(schema)) | (None, Some(schema)) => {
            Some(ResponseFormat::JsonSchema {
                // Gemini's schema has no name; other dialects require one.
                name: "response".to_string(),
                schema,
                strict: None,
                description: None,
            })
        }
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        (Some("text/plain"), _) | (None, None) => None,
        // text/x.enum and friends: Gemini-only.
        (Some(other), schema) => {
            config.insert("responseMimeType".into(), Value::String(other.to_string()));
            if let Some(schema) = schema {
                config.insert("responseJsonSchema".into(), schema);
            }
            None
        }
    };
    if let Some(thinking) = take_object(
        &mut config,
        "thinkingConfig",
        &format!("{P}.thinkingConfig"),
    )? {
        req.reasoning = parse_thinking(thinking, extra)?;
    }
    if !config.is_empty() {
        extra.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(())
}

/// `thinkingBudget` n > 0 is a budget, 0 is off, -1 (dynamic) is effort "medium";
/// `thinkingLevel` is an effort. A config canonical cannot say exactly (dynamic budget, a level) is
/// also kept verbatim in `extra.thinkingConfig`, which then wins when rendering for Gemini.
fn parse_thinking(mut obj: Obj, extra: &mut Obj) -> Result<Option<Reasoning>, WireError> {
    const P: &str = "generationConfig.thinkingConfig";
    let verbatim = obj.clone();
    let budget =
        match obj.remove("thinkingBudget") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(|| {
                WireError::at(format!("{P}.thinkingBudget"), "expected an integer")
            })?),
            Some(other) => {
                return Err(wrong_type(
                    &format!("{P}.thinkingBudget"),
                    "an integer",
                    &other,
                ));
            }
        };
    let level = take_string(&mut obj, "thinkingLevel", &format!("{P}.thinkingLevel"))?
        .map(|l| l.to_ascii_lowercase());
    let include = take_bool(&mut obj, "includeThoughts", &format!("{P}.includeThoughts"))?;
    let exact = level.is_none() && budget.is_none_or(|b| b >= 0) && obj.is_empty();
    if !exact {
        extra.insert("thinkingConfig".into(), Value::Object(verbatim));
    }
    Ok(match (budget, level) {
        (Some(0), None) => Some(Reasoning {
            disabled: true,
            ..Reasoning::default()
        }),
        (Some(b), None) if b > 0 => Some(Reasoning {
            budget_tokens: Some(u32::try_from(b).unwrap_or(u32::MAX)),
            ..Reasoning::default()
        }),
        (_, Some(level)) => Some(Reasoning {
            effort: Some(level),
            ..Reasoning::default()
        }),
        (Some(_), None) => Some(Reasoning {
            effort: Some("medium".to_string()),
            ..Reasoning::default()
        }),
        // Only includeThoughts: the model's default thinking, shown.
        (None, None) if include == Some(true) => Some(Reasoning::default()),
        (None, None) => None,
    })
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// Renders a canonical request as a Gemini `generateContent` body (no model, no stream flag: both
/// belong in the URL).
pub fn request_to_json(req: &Request) -> Result<Value, WireError> {
    let mut out = Obj::new();
    let names: HashMap<&str, &str> = req
        .messages
        .iter()
        .flat_map(|m| m.content.iter())
        .filter_map(|b| match b {
            ContentBlock::ToolCall(c) => Some((c.id.as_str(), c.name.as_str())),
            _ => None,
        })
        .collect();
    let ctx = Render {
        names,
        request: true,
    };

    let mut system: Vec<&str> = req.system.iter().map(|t| t.text.as_str()).collect();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::with_capacity(req.messages.len());
    for (i, msg) in req.messages.iter().enumerate() {
        let role = match msg.role {
            // Gemini has no system turn: mid-conversation instructions join systemInstruction.
            Role::System => {
                system.extend(msg.content.iter().filter_map(|b| match b {
                    ContentBlock::Text(t) => Some(t.text.as_str()),
                    _ => None,
                }));
                continue;
            }
            Role::User => "user",
            Role::Assistant => "model",
        };
        let mut parts = Vec::with_capacity(msg.content.len());
        render_blocks(&msg.content, &ctx, &format!("messages[{i}]"), &mut parts)?;
        if parts.is_empty() {
            continue;
        }
        // Consecutive turns of one role are one content (parallel function responses belong together).
        match contents.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => contents.push((role, parts)),
        }
    }
    let system: Vec<Value> = system
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(|t| json!({"text": t}))
        .collect();
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let contents: Vec<Value> = contents
        .into_iter()
        .map(|(role, mut parts)| {
            if role == "model" {
                ensure_call_signature(&mut parts);
            }
            json!({"role": role, "parts": parts})
        })
        .collect();
    out.insert("contents".into(), Value::Array(contents));

    let mut tools = Vec::new();
    let decls: Vec<Value> = req
        .tools
        .iter()
        .filter_map(|t| match t {
            Tool::Function(f) => Some(function_declaration(f)),
            _ => None,
        })
        .collect();
    if !decls.is_empty() {
        tools.push(json!({"functionDeclarations": decls}));
    }
    tools.extend(req.tools.iter().filter_map(|t| match t {
        Tool::Unknown {
            dialect: DIALECT,
            value,
        } => Some(value.clone()),
        _ => None,
    }));
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &req.tool_choice {
        let fcc = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        out.insert("toolConfig".into(), json!({"functionCallingConfig": fcc}));
    }

    let extra = req.extra.as_ref().filter(|e| e.dialect == DIALECT);
    let mut generation = Obj::new();
    if let Some(m) = req.max_tokens {
        generation.insert("maxOutputTokens".into(), m.into());
    }
    if let Some(t) = req.temperature {
        generation.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        generation.insert("topP".into(), p.into());
    }
    if let Some(k) = req.top_k {
        generation.insert("topK".into(), k.into());
    }
    if !req.stop_sequences.is_empty() {
        generation.insert("stopSequences".into(), json!(req.stop_sequences));
    }
    match &req.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            generation.insert("responseMimeType".into(), "application/json".into());
            generation.insert("responseJsonSchema".into(), json_schema_out(schema));
        }
        Some(ResponseFormat::JsonObject) => {
            generation.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::Text) | None => {}
    }
    let verbatim_thinking = extra.and_then(|e| e.fields.get("thinkingConfig"));
    if let Some(thinking) = verbatim_thinking {
        generation.insert("thinkingConfig".into(), thinking.clone());
    } else if let Some(r) = &req.reasoning {
        let thinking = if r.disabled {
            json!({"thinkingBudget": 0})
        } else {
            match r.budget_or_from_effort() {
                Some(0) => json!({"thinkingBudget": 0}),
                Some(b) => json!({"thinkingBudget": b, "includeThoughts": true}),
                None => json!({"includeThoughts": true}),
            }
        };
        generation.insert("thinkingConfig".into(), thinking);
    }
    if let Some(extra) = extra {
        for (key, value) in &extra.fields {
            match (key.as_str(), value) {
                ("thinkingConfig", _) => {}
                // Canonical values win; the rest of Gemini's generationConfig fills the gaps.
                ("generationConfig", Value::Object(more)) => {
                    for (k, v) in more {
                        generation.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                ("toolConfig", Value::Object(more)) => {
                    let entry = out
                        .entry("toolConfig")
                        .or_insert_with(|| Value::Object(Obj::new()));
                    if let Value::Object(tc) = entry {
                        for (k, v) in more {
                            tc.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
                _ => {
                    out.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
        }
    }
    if !generation.is_empty() {
        out.insert("generationConfig".into(), Value::Object(generation));
    }
    Ok(Value::Object(out))
}

fn function_declaration(f: &FunctionTool) -> Value {
    let mut v = json!({"name": f.name});
    if let Some(d) = &f.description {
        v["description"] = Value::String(d.clone());
    }
    if !f.parameters.is_null() {
        v["parametersJsonSchema"] = json_schema_out(&f.parameters);
    }
    v
}

#[cfg(test)]
#[allow(clippy::panic)]
mod snake_case_tests {
    use super::*;

    #[test]
    fn proto_field_names_are_accepted_but_user_keys_are_kept() {
        let body = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],
            "system_instruction":{"parts":[{"text":"be brief"}]},
            "tools":[{"function_declarations":[{"name":"f","parameters_json_schema":
                {"type":"object","properties":{"city_name":{"type":"string"}}}}]}],
            "generation_config":{"max_output_tokens":77}}"#;
        let req = parse_request(body, "gemini-2.5-flash").unwrap_or_default();
        assert_eq!(req.max_tokens, Some(77));
        assert_eq!(req.system.len(), 1);
        let Some(Tool::Function(f)) = req.tools.first() else {
            panic!("no function tool: {req:?}");
        };
        assert!(
            f.parameters["properties"].get("city_name").is_some(),
            "{:?}",
            f.parameters
        );
    }
}
