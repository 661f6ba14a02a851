//! Named presets of the OpenAI-compatible adapter: where each service lives and which variable holds
//! its key. Their request quirks live in `providers::compatible`.
//!
//! Base URLs and key variables are the ones each vendor's own docs and SDKs use (checked
//! 2026-11-22): Mistral `api.mistral.ai/v1`, Groq `api.groq.com/openai/v1`, DeepSeek
//! `api.deepseek.com/v1`, Together `api.together.xyz/v1`, Perplexity `api.perplexity.ai` (no
//! version segment), Cohere's Compatibility API `api.cohere.ai/compatibility/v1`, Z.ai
//! `api.z.ai/api/paas/v4`; the local servers' defaults are Ollama `localhost:11434` (its
//! OpenAI-compatible API under `/v1`), LM Studio `localhost:1234/v1` and vLLM `localhost:8000/v1`.

/// One OpenAI-compatible service the gateway knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    Mistral,
    Groq,
    DeepSeek,
    Together,
    Perplexity,
    Cohere,
    Zai,
    Ollama,
    LmStudio,
    Vllm,
}

impl Preset {
    pub const ALL: [Preset; 10] = [
        Preset::Mistral,
        Preset::Groq,
        Preset::DeepSeek,
        Preset::Together,
        Preset::Perplexity,
        Preset::Cohere,
        Preset::Zai,
        Preset::Ollama,
        Preset::LmStudio,
        Preset::Vllm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Mistral => "mistral",
            Preset::Groq => "groq",
            Preset::DeepSeek => "deepseek",
            Preset::Together => "together",
            Preset::Perplexity => "perplexity",
            Preset::Cohere => "cohere",
            Preset::Zai => "zai",
            Preset::Ollama => "ollama",
            Preset::LmStudio => "lmstudio",
            Preset::Vllm => "vllm",
        }
    }

    pub(super) fn default_base_url(self) -> &'static str {
        match self {
            Preset::Mistral => "https://api.mistral.ai/v1",
            Preset::Groq => "https://api.groq.com/openai/v1",
            Preset::DeepSeek => "https://api.deepseek.com/v1",
            Preset::Together => "https://api.together.xyz/v1",
            Preset::Perplexity => "https://api.perplexity.ai",
            Preset::Cohere => "https://api.cohere.ai/compatibility/v1",
            Preset::Zai => "https://api.z.ai/api/paas/v4",
            Preset::Ollama => "http://localhost:11434/v1",
            Preset::LmStudio => "http://localhost:1234/v1",
            Preset::Vllm => "http://localhost:8000/v1",
        }
    }

    /// Variables holding the key, first one named in messages.
    pub(super) fn key_envs(self) -> &'static [&'static str] {
        match self {
            Preset::Mistral => &["MISTRAL_API_KEY"],
            Preset::Groq => &["GROQ_API_KEY"],
            Preset::DeepSeek => &["DEEPSEEK_API_KEY"],
            Preset::Together => &["TOGETHER_API_KEY"],
            // Perplexity's docs use both names.
            Preset::Perplexity => &["PERPLEXITY_API_KEY", "PPLX_API_KEY"],
            // Cohere's SDK reads CO_API_KEY; its docs say COHERE_API_KEY.
            Preset::Cohere => &["COHERE_API_KEY", "CO_API_KEY"],
            Preset::Zai => &["ZAI_API_KEY"],
            Preset::Ollama => &["OLLAMA_API_KEY"],
            Preset::LmStudio => &["LMSTUDIO_API_KEY"],
            Preset::Vllm => &["VLLM_API_KEY"],
        }
    }

    /// Local servers run without a key; they are used once the user points the gateway at them
    /// (their base-URL variable or a `[providers.NAME]` table).
    pub fn keyless(self) -> bool {
        matches!(self, Preset::Ollama | Preset::LmStudio | Preset::Vllm)
    }

    /// A base-URL variable the user may already have set for other tools (besides the gateway's
    /// own `EKAI_<NAME>_BASE_URL`).
    pub(super) fn base_env(self) -> Option<&'static str> {
        match self {
            // The original gateway's variable: the server root, `/v1` is added.
            Preset::Ollama => Some("OLLAMA_BASE_URL"),
            _ => None,
        }
    }
}
