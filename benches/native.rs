//! Criterion micro-benchmarks of the native core (`cargo bench`): the safetensors header parser and the
//! checkpoint key matcher, on DeepSeek-V3-shaped key names (the same shapes as benches/workloads.py, with
//! fewer layers so one iteration stays in the millisecond range): one adapter at a time, and a fleet
//! checked in parallel against one base index as `BaseIndex.check_many` does.
//!
//!     cargo bench --bench native
//!
//! The files are written to a temporary directory by the bench itself; nothing else is needed.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use _native::checkpoint::{BaseIndex, LoadAs};
use _native::matcher;
use _native::safetensors::Header;
use _native::storage::Location;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const LAYERS: usize = 8; // of which DENSE are dense; the rest carry 256 routed experts each
const DENSE: usize = 3;
const EXPERTS: usize = 256;
const SHARDS: usize = 8;
/// Adapters in the fleet bench: enough for every thread to check several in a row, which
/// is where reusing one thread's buffers from adapter to adapter shows.
const FLEET: usize = 8;

/// One safetensors file (header + data of 0x3f bytes, so no lora_B is all zeros) for
/// `(name, dtype, shape)` entries.
fn safetensors(tensors: &[(String, &str, Vec<u64>)]) -> Vec<u8> {
    let mut json = String::from("{\"__metadata__\":{\"format\":\"pt\"}");
    let mut offset = 0u64;
    for (name, dtype, shape) in tensors {
        let width = match *dtype {
            "F32" => 4,
            "BF16" => 2,
            _ => 1,
        };
        let size = width * shape.iter().product::<u64>();
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        json.push_str(&format!(
            ",\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{}]}}",
            dims.join(","),
            offset + size
        ));
        offset += size;
    }
    json.push('}');
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes.resize(bytes.len() + offset as usize, 0x3f);
    bytes
}

fn base_tensors() -> Vec<(String, &'static str, Vec<u64>)> {
    let mut out = vec![("model.embed_tokens.weight".to_string(), "BF16", vec![16, 8])];
    for layer in 0..LAYERS {
        let p = format!("model.layers.{layer}");
        out.push((format!("{p}.input_layernorm.weight"), "BF16", vec![8]));
        out.push((
            format!("{p}.post_attention_layernorm.weight"),
            "BF16",
            vec![8],
        ));
        for (name, o, i) in [
            ("q_a_proj", 4, 8),
            ("q_b_proj", 8, 4),
            ("kv_a_proj_with_mqa", 6, 8),
            ("kv_b_proj", 8, 4),
            ("o_proj", 8, 8),
        ] {
            out.push((
                format!("{p}.self_attn.{name}.weight"),
                "F8_E4M3",
                vec![o, i],
            ));
            out.push((
                format!("{p}.self_attn.{name}.weight_scale_inv"),
                "F32",
                vec![1, 1],
            ));
        }
        let mut experts = vec![];
        if layer >= DENSE {
            experts.push(format!("{p}.mlp.shared_experts"));
            experts.extend((0..EXPERTS).map(|e| format!("{p}.mlp.experts.{e}")));
            out.push((
                format!("{p}.mlp.gate.weight"),
                "BF16",
                vec![EXPERTS as u64, 8],
            ));
            out.push((
                format!("{p}.mlp.gate.e_score_correction_bias"),
                "F32",
                vec![EXPERTS as u64],
            ));
        } else {
            experts.push(format!("{p}.mlp"));
        }
        for e in experts {
            for (name, o, i) in [("gate_proj", 4, 8), ("up_proj", 4, 8), ("down_proj", 8, 4)] {
                out.push((format!("{e}.{name}.weight"), "F8_E4M3", vec![o, i]));
                out.push((format!("{e}.{name}.weight_scale_inv"), "F32", vec![1, 1]));
            }
        }
    }
    out.push(("model.norm.weight".to_string(), "BF16", vec![8]));
    out.push(("lm_head.weight".to_string(), "BF16", vec![16, 8]));
    out
}

fn adapter_tensors(prefix: &str) -> Vec<(String, &'static str, Vec<u64>)> {
    let mut out = vec![];
    for layer in DENSE..LAYERS {
        for e in 0..EXPERTS {
            for (name, o, i) in [("gate_proj", 4, 8), ("up_proj", 4, 8), ("down_proj", 8, 4)] {
                let m = format!("{prefix}model.layers.{layer}.mlp.experts.{e}.{name}");
                out.push((format!("{m}.lora_A.weight"), "F32", vec![2, i]));
                out.push((format!("{m}.lora_B.weight"), "F32", vec![o, 2]));
            }
        }
    }
    out
}

fn write_base(root: &Path) {
    fs::create_dir_all(root).unwrap();
    let tensors = base_tensors();
    let per = tensors.len().div_ceil(SHARDS);
    let mut map = vec![];
    for (index, chunk) in tensors.chunks(per).enumerate() {
        let name = format!("model-{:05}-of-{SHARDS:05}.safetensors", index + 1);
        fs::write(root.join(&name), safetensors(chunk)).unwrap();
        map.extend(chunk.iter().map(|t| format!("\"{}\":\"{name}\"", t.0)));
    }
    let index = format!("{{\"metadata\":{{}},\"weight_map\":{{{}}}}}", map.join(","));
    fs::write(root.join("model.safetensors.index.json"), index).unwrap();
    fs::write(root.join("config.json"), "{\"model_type\":\"deepseek_v3\"}").unwrap();
}

fn write_adapter(root: &Path, prefix: &str) {
    fs::create_dir_all(root).unwrap();
    fs::write(
        root.join("adapter_model.safetensors"),
        safetensors(&adapter_tensors(prefix)),
    )
    .unwrap();
    let config = r#"{"peft_type":"LORA","task_type":"CAUSAL_LM","r":2,"lora_alpha":4,"target_modules":["gate_proj","up_proj","down_proj"],"fan_in_fan_out":false,"use_dora":false}"#;
    fs::write(root.join("adapter_config.json"), config).unwrap();
}

fn header_parser(c: &mut Criterion) {
    let bytes = safetensors(&adapter_tensors("base_model.model."));
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let mut group = c.benchmark_group("header");
    group.throughput(Throughput::Bytes(header_len + 8));
    group.bench_function("parse_adapter_header", |b| {
        b.iter(|| {
            Header::from_file_bytes(black_box(&bytes))
                .unwrap()
                .tensors()
                .len()
        })
    });
    group.finish();
}

fn key_matcher(c: &mut Criterion) {
    let temp = tempfile::tempdir().unwrap();
    let base = temp.path().join("base");
    write_base(&base);
    let clean = temp.path().join("clean");
    write_adapter(&clean, "base_model.model.");
    let compiled = temp.path().join("orig-mod");
    write_adapter(&compiled, "base_model.model._orig_mod.");
    let fleet: Vec<PathBuf> = (0..FLEET)
        .map(|i| {
            let path = temp.path().join(format!("fleet-{i:02}"));
            write_adapter(&path, "base_model.model.");
            path
        })
        .collect();
    let keys = adapter_tensors("").len() as u64;

    let mut group = c.benchmark_group("matcher");
    group.sample_size(20);
    group.bench_function("base_index_open", |b| {
        b.iter(|| {
            BaseIndex::open(black_box(&base), LoadAs::CausalLm)
                .unwrap()
                .module_count()
        })
    });
    let index = BaseIndex::open(&base, LoadAs::CausalLm).unwrap();
    // A bench of a matcher that finds the wrong things would time the wrong work.
    let codes = |adapter: &Path| matcher::check(&index, adapter).unwrap().codes();
    assert_eq!(codes(&clean), Vec::<&str>::new());
    assert_eq!(codes(&compiled), ["PK001"]);
    group.throughput(Throughput::Elements(keys));
    group.bench_function("check_clean_adapter", |b| {
        b.iter(|| matcher::check(&index, black_box(&clean)).unwrap())
    });
    group.bench_function("check_orig_mod_adapter", |b| {
        b.iter(|| matcher::check(&index, black_box(&compiled)).unwrap())
    });
    group.throughput(Throughput::Elements(keys * FLEET as u64));
    let fleet: Vec<Location> = fleet.into_iter().map(Location::Local).collect();
    group.bench_function("check_fleet_parallel", |b| {
        b.iter(|| matcher::check_many(&index, black_box(&fleet)))
    });
    group.finish();
}

criterion_group!(benches, header_parser, key_matcher);
criterion_main!(benches);
