//! Adapter key -> (module path, role), as docs/keys.md describes.
//!
//! A key is `[<outer wrapper>]<prefix><module path>.<tuner parameter>`: PEFT's
//! `base_model.model.` prefix (the first occurrence of that component pair; components
//! before it are an outer wrapper such as DDP's `module.`; a key without the pair has a
//! missing prefix and is taken as is), a module path, then a trailing tuner parameter,
//! optionally followed by an adapter name component and a final `.weight`/`.bias`.
//! Classification works on string slices: in the common case the module path borrows
//! from the key.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;

static MODULE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("module"));
static INNER_PREFIX_FINDER: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(".base_model.model."));

/// PEFT's wrapper prefix on saved adapter keys.
pub const PEFT_PREFIX: &str = "base_model.model.";

/// First components of keys without a module path: prompt learning, VeRA's shared
/// projections.
pub const UNPLACED: [&str; 4] = ["prompt_embeddings", "prompt_encoder", "vera_A", "vera_B"];

/// What an adapter tensor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    LoraA,
    LoraB,
    LoraEmbeddingA,
    LoraEmbeddingB,
    /// DoRA's `lora_magnitude_vector`.
    Magnitude,
    /// A trained copy of a base parameter (`modules_to_save`, or a full module saved as is).
    SavedCopy,
    /// `<module>.original_module.<param>`: ignored for matching.
    OriginalModule,
    /// Another tuner's parameter (IA3, LoHa, LoKr, AdaLoRA's `lora_E`, VeRA, OFT/BOFT,
    /// FourierFT, LN tuning): matched by module only.
    OtherTuner,
    /// Prompt learning (`prompt_embeddings`) or a tuner's shared tensor (VeRA's
    /// `vera_A`/`vera_B`): no module path, never matched.
    Unplaced,
}

impl Role {
    /// Whether the tensor names a module to match against the base.
    pub fn has_module(self) -> bool {
        !matches!(self, Self::OriginalModule | Self::Unplaced)
    }

    /// LoRA proper (shape-checked, rank-checked).
    pub fn is_lora(self) -> bool {
        matches!(
            self,
            Self::LoraA
                | Self::LoraB
                | Self::LoraEmbeddingA
                | Self::LoraEmbeddingB
                | Self::Magnitude
        )
    }
}

/// A classified key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParts<'a> {
    /// Length of the key before the module path: the outer wrapper plus PEFT's
    /// `base_model.model.` (0 when the key has no such pair).
    pub wrapper_len: usize,
    /// Whether PEFT would load the key as is: it starts with `base_model.model.` (no
    /// outer wrapper, no missing prefix).
    pub peft_prefix_ok: bool,
    /// The module path (empty for [`Role::Unplaced`]).
    pub module: Cow<'a, str>,
    pub role: Role,
    /// The final component when it is `.bias` (LoRA `lora_B.bias`).
    pub is_bias: bool,
    /// For [`Role::SavedCopy`]: the base parameter the copy stands for (`weight`, `bias`, ...).
    pub param: &'a str,
}

/// The tuner parameter a component names, if any. Most components (`weight`, `q_proj`,
/// layer numbers) are rejected on their first byte.
fn tuner_role(component: &str) -> Option<Role> {
    let bytes = component.as_bytes();
    match bytes.first()? {
        b'l' => {
            if let Some(rest) = bytes.strip_prefix(b"lora_") {
                return match rest {
                    b"A" => Some(Role::LoraA),
                    b"B" => Some(Role::LoraB),
                    b"embedding_A" => Some(Role::LoraEmbeddingA),
                    b"embedding_B" => Some(Role::LoraEmbeddingB),
                    b"magnitude_vector" => Some(Role::Magnitude),
                    b"E" => Some(Role::OtherTuner),
                    _ => None,
                };
            }
        }
        b'i' | b'h' | b'v' | b'o' | b'b' | b'f' | b't' => {}
        _ => return None,
    }
    match component {
        "ia3_l"
        | "hada_w1_a"
        | "hada_w1_b"
        | "hada_w2_a"
        | "hada_w2_b"
        | "hada_t1"
        | "hada_t2"
        | "lokr_w1"
        | "lokr_w1_a"
        | "lokr_w1_b"
        | "lokr_w2"
        | "lokr_w2_a"
        | "lokr_w2_b"
        | "lokr_t2"
        | "vera_lambda_b"
        | "vera_lambda_d"
        | "oft_r"
        | "oft_s"
        | "boft_R"
        | "boft_s"
        | "fourierft_spectrum"
        | "ln_tuning_layers"
        | "trainable_tokens_delta"
        | "trainable_tokens_original" => Some(Role::OtherTuner),
        _ => None,
    }
}

/// Byte offset of the first component equal to `name` in a dotted path.
fn find_component(path: &str, name: &str) -> Option<usize> {
    let bytes = path.as_bytes();
    let mut from = 0;
    while let Some(found) = path.get(from..).and_then(|rest| rest.find(name)) {
        let start = from + found;
        let end = start + name.len();
        let starts = start == 0 || bytes.get(start - 1) == Some(&b'.');
        let ends = end == bytes.len() || bytes.get(end) == Some(&b'.');
        if starts && ends {
            return Some(start);
        }
        from = start + 1;
    }
    None
}

/// Splits `path` at its last dot: (head, last component); head is empty without a dot.
fn split_last(path: &str) -> (&str, &str) {
    // Components are short: a plain backwards loop beats a memrchr call.
    match path.bytes().rposition(|b| b == b'.') {
        Some(dot) => (
            path.get(..dot).unwrap_or(""),
            path.get(dot + 1..).unwrap_or(""),
        ),
        None => ("", path),
    }
}

/// Length of the key before its module path: through the first `base_model.model.`
/// component pair (with any outer wrapper before it), or 0 when the key has none. A
/// prefix check in the common case; a search only for keys that do not start with it.
pub fn peft_wrapper_len(key: &str) -> usize {
    if key.starts_with(PEFT_PREFIX) {
        return PEFT_PREFIX.len();
    }
    match INNER_PREFIX_FINDER.find(key.as_bytes()) {
        Some(dot) => dot + 1 + PEFT_PREFIX.len(),
        None => 0,
    }
}

/// Classifies one adapter key.
pub fn classify(key: &str) -> KeyParts<'_> {
    let wrapper_len = peft_wrapper_len(key);
    let peft_prefix_ok = wrapper_len == PEFT_PREFIX.len();
    let rest = key.get(wrapper_len..).unwrap_or("");
    let unplaced = || KeyParts {
        wrapper_len,
        peft_prefix_ok,
        module: Cow::Borrowed(""),
        role: Role::Unplaced,
        is_bias: false,
        param: "",
    };

    if rest.starts_with("prompt_e") || rest.starts_with("vera_") {
        let first = rest.split('.').next().unwrap_or("");
        if UNPLACED.contains(&first) {
            return unplaced();
        }
    }

    let (head, last) = split_last(rest);
    let (param, before_param) = match last {
        "weight" | "bias" => (Some(last), head),
        _ => (None, rest),
    };
    let (head2, second) = split_last(before_param);
    if let Some(role) = tuner_role(second) {
        return tuner_key(wrapper_len, head2, role, param);
    }
    // `<tuner>.<adapter name>[.weight]`.
    let (head3, third) = split_last(head2);
    if !head2.is_empty() {
        if let Some(role) = tuner_role(third) {
            return tuner_key(wrapper_len, head3, role, param);
        }
    }
    // Not a tuner parameter (tuner parameters never sit inside these wrappers): a copy
    // of a base tensor, kept by `modules_to_save`. Both wrapper components contain
    // "module": one SIMD search rules them out.
    if MODULE_FINDER.find(rest.as_bytes()).is_some() {
        if let Some(at) = find_component(rest, "original_module") {
            return KeyParts {
                wrapper_len,
                peft_prefix_ok,
                module: Cow::Borrowed(rest.get(..at.saturating_sub(1)).unwrap_or("")),
                role: Role::OriginalModule,
                is_bias: false,
                param: "",
            };
        }
        if let Some(at) = find_component(rest, "modules_to_save") {
            return saved_copy_wrapper(wrapper_len, rest, at);
        }
    }
    // PEFT saves an embedding LoRA's base embedding as `<module>.base_layer.weight` (and,
    // with trainable tokens, `<module>.token_adapter.base_layer.weight`): a copy of
    // `<module>.weight`.
    let (head2, second) = split_last(head);
    let head = if second == "base_layer" && !head2.is_empty() {
        head2.strip_suffix(".token_adapter").unwrap_or(head2)
    } else {
        head
    };
    if head.is_empty() {
        // One component: no module path.
        return unplaced();
    }
    KeyParts {
        wrapper_len,
        peft_prefix_ok,
        module: Cow::Borrowed(head),
        role: Role::SavedCopy,
        is_bias: last == "bias",
        param: last,
    }
}

fn tuner_key<'a>(
    wrapper_len: usize,
    module: &'a str,
    role: Role,
    param: Option<&'a str>,
) -> KeyParts<'a> {
    // Trainable tokens live in a `token_adapter` wrapper around the embedding.
    let module = module.strip_suffix(".token_adapter").unwrap_or(module);
    KeyParts {
        wrapper_len,
        peft_prefix_ok: wrapper_len == PEFT_PREFIX.len(),
        module: Cow::Borrowed(module),
        // A tuner parameter without a module path names nothing to match.
        role: if module.is_empty() {
            Role::Unplaced
        } else {
            role
        },
        is_bias: param == Some("bias"),
        param: param.unwrap_or(""),
    }
}

/// `<module>.modules_to_save.<adapter name>.<param path>` (or `<module>.modules_to_save.<param>`):
/// the copy of `<module>.<param path>`.
fn saved_copy_wrapper(wrapper_len: usize, rest: &str, at: usize) -> KeyParts<'_> {
    let module = rest.get(..at.saturating_sub(1)).unwrap_or("");
    let tail = rest.get(at + "modules_to_save".len() + 1..).unwrap_or("");
    // The first tail component is the adapter name whenever more than one follows.
    let param_path = match tail.split_once('.') {
        Some((_, after_name)) => after_name,
        None => tail,
    };
    let (sub, param) = split_last(param_path);
    let module = match (module.is_empty(), sub.is_empty()) {
        (_, true) => Cow::Borrowed(module),
        (true, false) => Cow::Borrowed(sub),
        (false, false) => Cow::Owned(format!("{module}.{sub}")),
    };
    KeyParts {
        wrapper_len,
        peft_prefix_ok: wrapper_len == PEFT_PREFIX.len(),
        role: if module.is_empty() {
            Role::Unplaced
        } else {
            Role::SavedCopy
        },
        module,
        is_bias: param == "bias",
        param,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(key: &str) -> (String, Role, bool, String) {
        let p = classify(key);
        (p.module.to_string(), p.role, p.is_bias, p.param.to_string())
    }

    fn module_role(key: &str) -> (String, Role) {
        let p = classify(key);
        (p.module.to_string(), p.role)
    }

    #[test]
    fn lora_keys() {
        let m = "model.layers.0.self_attn.q_proj";
        for (key, role) in [
            (format!("base_model.model.{m}.lora_A.weight"), Role::LoraA),
            (format!("base_model.model.{m}.lora_B.weight"), Role::LoraB),
            (
                format!("base_model.model.{m}.lora_A.default.weight"),
                Role::LoraA,
            ),
            (format!("{m}.lora_B.my_adapter.weight"), Role::LoraB),
            (
                format!("base_model.model.{m}.lora_magnitude_vector"),
                Role::Magnitude,
            ),
            (
                format!("base_model.model.{m}.lora_magnitude_vector.weight"),
                Role::Magnitude,
            ),
            (
                format!("base_model.model.{m}.lora_magnitude_vector.default.weight"),
                Role::Magnitude,
            ),
        ] {
            assert_eq!(module_role(&key), (m.to_string(), role), "{key}");
        }
        let p = classify("base_model.model.x.lora_B.bias");
        assert!(p.is_bias);
        assert_eq!(p.wrapper_len, 17);
        assert_eq!(classify("x.lora_A.weight").wrapper_len, 0);
    }

    #[test]
    fn outer_wrappers_and_missing_prefixes() {
        let m = "model.layers.0.self_attn.q_proj";
        // DDP around the PeftModel: the module path starts after `base_model.model.`.
        let p = classify("module.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
        assert_eq!((p.module.as_ref(), p.role), (m, Role::LoraA));
        assert_eq!(p.wrapper_len, "module.base_model.model.".len());
        assert!(!p.peft_prefix_ok);
        // No PEFT prefix: taken as is, flagged.
        let p = classify("model.layers.0.self_attn.q_proj.lora_B.weight");
        assert_eq!((p.module.as_ref(), p.role), (m, Role::LoraB));
        assert_eq!(p.wrapper_len, 0);
        assert!(!p.peft_prefix_ok);
        assert!(
            classify("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
                .peft_prefix_ok
        );
        // The first whole-component pair counts; lookalike components do not.
        assert_eq!(
            peft_wrapper_len("a.base_model.model.base_model.model.x.lora_A.weight"),
            "a.base_model.model.".len()
        );
        assert_eq!(peft_wrapper_len("my_base_model.model.x.lora_A.weight"), 0);
        assert_eq!(peft_wrapper_len("a.base_model.models.x.lora_A.weight"), 0);
        assert_eq!(peft_wrapper_len("a.base_model.model"), 0);
        // Saved copies behind an outer wrapper.
        assert_eq!(
            parts("module.base_model.model.lm_head.weight"),
            ("lm_head".into(), Role::SavedCopy, false, "weight".into())
        );
    }

    #[test]
    fn embedding_keys() {
        assert_eq!(
            module_role("base_model.model.model.embed_tokens.lora_embedding_A"),
            ("model.embed_tokens".into(), Role::LoraEmbeddingA)
        );
        assert_eq!(
            module_role("base_model.model.model.embed_tokens.lora_embedding_B.default"),
            ("model.embed_tokens".into(), Role::LoraEmbeddingB)
        );
    }

    #[test]
    fn saved_copies() {
        assert_eq!(
            parts("base_model.model.lm_head.weight"),
            ("lm_head".into(), Role::SavedCopy, false, "weight".into())
        );
        assert_eq!(
            parts("base_model.model.lm_head.modules_to_save.default.weight"),
            ("lm_head".into(), Role::SavedCopy, false, "weight".into())
        );
        assert_eq!(
            parts("base_model.model.score.modules_to_save.default.dense.bias"),
            ("score.dense".into(), Role::SavedCopy, true, "bias".into())
        );
        assert_eq!(
            parts("base_model.model.lm_head.modules_to_save.weight"),
            ("lm_head".into(), Role::SavedCopy, false, "weight".into())
        );
        assert_eq!(
            parts("base_model.model.model.embed_tokens.base_layer.weight"),
            (
                "model.embed_tokens".into(),
                Role::SavedCopy,
                false,
                "weight".into()
            )
        );
        assert_eq!(
            module_role("base_model.model.lm_head.original_module.weight"),
            ("lm_head".into(), Role::OriginalModule)
        );
        // A module name that merely contains the word is not a wrapper.
        assert_eq!(
            module_role("base_model.model.my_modules_to_save.weight"),
            ("my_modules_to_save".into(), Role::SavedCopy)
        );
    }

    #[test]
    fn other_tuners_and_prompt_learning() {
        for key in [
            "base_model.model.model.layers.0.mlp.down_proj.ia3_l",
            "base_model.model.model.layers.0.mlp.down_proj.hada_w1_a",
            "base_model.model.model.layers.0.mlp.down_proj.lokr_w2_b.default",
            "base_model.model.model.layers.0.mlp.down_proj.lora_E",
            "base_model.model.model.layers.0.mlp.down_proj.vera_lambda_b",
            "base_model.model.model.layers.0.mlp.down_proj.oft_r.weight",
            "base_model.model.model.layers.0.mlp.down_proj.fourierft_spectrum",
            "base_model.model.model.layers.0.mlp.down_proj.ln_tuning_layers.weight",
            "base_model.model.model.layers.0.mlp.down_proj.token_adapter.trainable_tokens_delta",
        ] {
            assert_eq!(
                module_role(key),
                ("model.layers.0.mlp.down_proj".into(), Role::OtherTuner),
                "{key}"
            );
        }
        assert_eq!(classify("prompt_embeddings").role, Role::Unplaced);
        assert_eq!(
            classify("base_model.model.prompt_embeddings").role,
            Role::Unplaced
        );
        assert_eq!(classify("base_model.vera_A").role, Role::SavedCopy);
        assert_eq!(classify("base_model.model.vera_A").role, Role::Unplaced);
        assert_eq!(classify("vera_A").role, Role::Unplaced);
    }

    #[test]
    fn odd_keys_do_not_panic() {
        for key in [
            "",
            ".",
            "..",
            "weight",
            ".weight",
            "lora_A",
            "lora_A.weight",
            "a..lora_B.weight",
            "modules_to_save",
            "x.modules_to_save",
            "original_module.",
            "é.lora_A.wéight",
        ] {
            let _ = classify(key);
        }
        assert_eq!(module_role("lora_A.weight"), ("".into(), Role::Unplaced));
        assert_eq!(classify("weight").role, Role::Unplaced);
        assert_eq!(classify("base_model.model.lm_head").role, Role::Unplaced);
        assert_eq!(
            classify("modules_to_save.default.weight").role,
            Role::Unplaced
        );
    }

    #[test]
    fn find_component_respects_boundaries() {
        assert_eq!(
            find_component("a.modules_to_save.b", "modules_to_save"),
            Some(2)
        );
        assert_eq!(
            find_component("amodules_to_save.b", "modules_to_save"),
            None
        );
        assert_eq!(
            find_component("a.modules_to_saveb.modules_to_save", "modules_to_save"),
            Some(19)
        );
    }
}
