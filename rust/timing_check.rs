//! A timing check on a synthetic DeepSeek-V3-shaped checkpoint (ignored by default):
//!
//! ```text
//! PYO3_PYTHON=.venv/bin/python cargo test --release --lib timing_check -- --ignored --nocapture
//! ```
//!
//! The base has 61 layers (3 dense, 58 with 256 routed experts), FP8 weights with their
//! `weight_scale_inv`, about 90k tensors in 163 shards; the adapter is a per-expert LoRA of
//! about 89k keys. Tensors are tiny (the headers are what is measured); key names are the
//! real ones, in the sorted order safetensors writes. Prints keys/s for one adapter, for
//! one adapter with a `_orig_mod.` prefix (PK001), and for a fleet of 50 adapters checked
//! in parallel against one base index. Benchmarks proper live in `benches/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::checkpoint::{BaseIndex, LoadAs, INDEX_FILE};
use crate::matcher;

const SHARDS: usize = 163;

fn write_safetensors(path: &Path, mut tensors: Vec<(String, &str, Vec<u64>)>, fill: u8) {
    tensors.sort();
    let size = |dtype: &str| match dtype {
        "F8_E4M3" => 1,
        "BF16" => 2,
        _ => 4,
    };
    let mut json = String::from("{");
    let mut offset = 0u64;
    for (i, (name, dtype, shape)) in tensors.iter().enumerate() {
        let bytes = shape.iter().product::<u64>() * size(dtype);
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
            offset + bytes
        ));
        offset += bytes;
    }
    json.push('}');
    while !(8 + json.len()).is_multiple_of(8) {
        json.push(' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.resize(out.len() + offset as usize, fill);
    std::fs::write(path, out).unwrap();
}

fn base_tensors() -> Vec<(String, &'static str, Vec<u64>)> {
    let mut t = Vec::new();
    let linear = |t: &mut Vec<(String, &'static str, Vec<u64>)>, name: String| {
        t.push((format!("{name}.weight"), "F8_E4M3", vec![8, 14]));
        t.push((format!("{name}.weight_scale_inv"), "F32", vec![1, 1]));
    };
    t.push(("model.embed_tokens.weight".into(), "BF16", vec![129, 7]));
    for layer in 0..61 {
        let p = format!("model.layers.{layer}");
        t.push((format!("{p}.input_layernorm.weight"), "BF16", vec![7]));
        t.push((
            format!("{p}.post_attention_layernorm.weight"),
            "BF16",
            vec![7],
        ));
        for m in [
            "q_a_proj",
            "q_b_proj",
            "kv_a_proj_with_mqa",
            "kv_b_proj",
            "o_proj",
        ] {
            linear(&mut t, format!("{p}.self_attn.{m}"));
        }
        if layer < 3 {
            for m in ["gate_proj", "up_proj", "down_proj"] {
                linear(&mut t, format!("{p}.mlp.{m}"));
            }
        } else {
            t.push((format!("{p}.mlp.gate.weight"), "BF16", vec![256, 7]));
            t.push((
                format!("{p}.mlp.gate.e_score_correction_bias"),
                "F32",
                vec![256],
            ));
            for expert in 0..256 {
                for m in ["gate_proj", "up_proj", "down_proj"] {
                    linear(&mut t, format!("{p}.mlp.experts.{expert}.{m}"));
                }
            }
            for m in ["gate_proj", "up_proj", "down_proj"] {
                linear(&mut t, format!("{p}.mlp.shared_experts.{m}"));
            }
        }
    }
    t.push(("model.norm.weight".into(), "BF16", vec![7]));
    t.push(("lm_head.weight".into(), "BF16", vec![129, 7]));
    t
}

fn adapter_tensors(prefix: &str) -> Vec<(String, &'static str, Vec<u64>)> {
    let mut t = Vec::new();
    let mut lora = |module: String| {
        t.push((
            format!("base_model.model.{prefix}{module}.lora_A.weight"),
            "BF16",
            vec![4, 14],
        ));
        t.push((
            format!("base_model.model.{prefix}{module}.lora_B.weight"),
            "BF16",
            vec![8, 4],
        ));
    };
    for layer in 3..61 {
        for expert in 0..256 {
            for m in ["gate_proj", "up_proj", "down_proj"] {
                lora(format!("layers.{layer}.mlp.experts.{expert}.{m}"));
            }
        }
    }
    for layer in 0..61 {
        for m in ["q_b_proj", "o_proj"] {
            lora(format!("layers.{layer}.self_attn.{m}"));
        }
    }
    t
}

fn write_base(dir: &Path) {
    let tensors = base_tensors();
    let per = tensors.len().div_ceil(SHARDS);
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in tensors.chunks(per).enumerate() {
        let name = format!("model-{:05}-of-{SHARDS:06}.safetensors", i + 1);
        for (tensor, _, _) in chunk {
            weight_map.insert(tensor.clone(), name.clone().into());
        }
        write_safetensors(&dir.join(&name), chunk.to_vec(), 0);
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join(INDEX_FILE), index.to_string()).unwrap();
}

fn write_adapter(dir: &Path, prefix: &str) {
    std::fs::create_dir_all(dir).unwrap();
    write_safetensors(
        &dir.join("adapter_model.safetensors"),
        adapter_tensors(prefix),
        1,
    );
    let config = r#"{"peft_type": "LORA", "r": 4, "target_modules": ["gate_proj", "up_proj", "down_proj", "q_b_proj", "o_proj"]}"#;
    std::fs::write(dir.join("adapter_config.json"), config).unwrap();
}

/// The best of `runs` timings of `f`, in seconds.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let value = f();
        best = best.min(started.elapsed().as_secs_f64());
        last = Some(value);
    }
    (best, last.unwrap())
}

#[test]
#[ignore = "timing check: run with --release --ignored --nocapture"]
fn timing_check_deepseek_shaped() {
    let dir = tempfile::tempdir().unwrap();
    let base_dir = dir.path().join("base");
    std::fs::create_dir_all(&base_dir).unwrap();
    write_base(&base_dir);
    write_adapter(&dir.path().join("adapter"), "model.");
    write_adapter(&dir.path().join("orig"), "_orig_mod.model.");
    let fleet: Vec<PathBuf> = (0..50)
        .map(|i| {
            let path = dir.path().join(format!("fleet/{i:02}"));
            std::fs::create_dir_all(&path).unwrap();
            for file in ["adapter_model.safetensors", "adapter_config.json"] {
                std::fs::hard_link(dir.path().join("adapter").join(file), path.join(file)).unwrap();
            }
            path
        })
        .collect();

    let (seconds, base) = best_of(3, || BaseIndex::open(&base_dir, LoadAs::CausalLm).unwrap());
    println!(
        "base index: {} tensors in {} shards, {:.1} MB of headers, {:.1} ms",
        base.tensor_count,
        base.shard_count,
        base.header_bytes as f64 / 1e6,
        seconds * 1e3
    );
    for (name, expect) in [("adapter", vec![]), ("orig", vec!["PK001"])] {
        let path = dir.path().join(name);
        let (seconds, report) = best_of(5, || matcher::check(&base, &path).unwrap());
        assert_eq!(report.codes(), expect);
        let keys = report.counts.adapter_tensors as f64;
        println!(
            "{name}: {keys} keys in {:.1} ms: {:.2} M keys/s",
            seconds * 1e3,
            keys / seconds / 1e6
        );
    }
    let (seconds, reports) = best_of(3, || {
        fleet
            .par_iter()
            .map(|path| matcher::check_or_pk000(&base, path))
            .collect::<Vec<_>>()
    });
    let keys: u64 = reports.iter().map(|r| r.counts.adapter_tensors).sum();
    assert!(reports.iter().all(|r| r.findings.is_empty()));
    println!(
        "fleet of {} adapters on {} threads: {:.2} M keys in {:.0} ms: {:.2} M keys/s",
        reports.len(),
        rayon::current_num_threads(),
        keys as f64 / 1e6,
        seconds * 1e3,
        keys as f64 / seconds / 1e6
    );
}
