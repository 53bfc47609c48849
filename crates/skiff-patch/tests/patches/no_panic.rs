//! A quick, dependency-free fuzz: thousands of random and random-ish patches of all three types
//! against real-looking objects must give `Ok` or `Err`, never a panic, and a strategic merge
//! result never holds a directive. The cargo-fuzz target in `fuzz/` explores further.

use serde_json::{Map, Value, json};
use skiff_patch::{PatchType, StrategyTable, apply};

use crate::{DEPLOYMENT, POD, has_directive, types};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "metadata",
    "spec",
    "labels",
    "finalizers",
    "ownerReferences",
    "uid",
    "containers",
    "initContainers",
    "name",
    "image",
    "env",
    "value",
    "ports",
    "containerPort",
    "volumes",
    "emptyDir",
    "configMap",
    "strategy",
    "type",
    "rollingUpdate",
    "template",
    "args",
    "tolerations",
    "securityContext",
    "$patch",
    "$retainKeys",
    "$setElementOrder/containers",
    "$setElementOrder/env",
    "$setElementOrder/finalizers",
    "$deleteFromPrimitiveList/finalizers",
    "$setElementOrder/",
    "$deleteFromPrimitiveList/args",
    "$setElementOrder/volumes",
];
const STRINGS: &[&str] = &[
    "app", "sidecar", "delete", "replace", "merge", "a.io/x", "name", "type", "", "$patch",
];

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let choice = if depth == 0 {
        rng.below(5)
    } else {
        rng.below(8)
    };
    match choice {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => json!(rng.below(100) as i64 - 10),
        3 => json!(80.0),
        4 => Value::String((*rng.pick(STRINGS)).to_owned()),
        5 | 6 => {
            let mut object = Map::new();
            for _ in 0..rng.below(5) {
                object.insert((*rng.pick(KEYS)).to_owned(), random_value(rng, depth - 1));
            }
            Value::Object(object)
        }
        _ => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
    }
}

fn pod() -> Value {
    json!({
        "metadata": {"name": "p", "labels": {"app": "web"}, "finalizers": ["a.io/x", "b"],
                     "ownerReferences": [{"uid": "u1", "name": "rs"}]},
        "spec": {
            "containers": [
                {"name": "app", "image": "i", "args": ["a"], "env": [{"name": "A", "value": "1"}],
                 "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "j"}
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "k"}]
        }
    })
}

fn deployment() -> Value {
    json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {}},
                    "template": {"spec": pod()["spec"].clone()}}})
}

#[test]
fn random_bytes_never_panic() {
    let table = types();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let alphabet = br#"{}[]":,nul -0123456789.eEtruefals\"$patch$setElementOrder/containersname"#;
    let original = pod();
    for _ in 0..3_000 {
        let len = rng.below(48);
        let body: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(20) == 0 {
                    rng.next() as u8
                } else {
                    *rng.pick(alphabet)
                }
            })
            .collect();
        for ty in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            let _ = apply(&original, &body, ty, Some(POD), &table);
        }
    }
}

#[test]
fn random_strategic_and_merge_patches_never_panic_or_leak_directives() {
    let table = types();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut ok = 0;
    for round in 0..6_000 {
        let (root, mut original) = if round % 2 == 0 {
            (POD, pod())
        } else {
            (DEPLOYMENT, deployment())
        };
        // Chain a few patches so later ones meet earlier results.
        for _ in 0..3 {
            let mut patch = Map::new();
            for _ in 0..1 + rng.below(3) {
                patch.insert((*rng.pick(KEYS)).to_owned(), random_value(&mut rng, 4));
            }
            let body = Value::Object(patch).to_string();
            let _ = apply(&original, body.as_bytes(), PatchType::Merge, None, &table);
            match apply(
                &original,
                body.as_bytes(),
                PatchType::StrategicMerge,
                Some(root),
                &table,
            ) {
                Ok(patched) => {
                    assert!(patched.is_object());
                    assert!(!has_directive(&patched), "{body} gave {patched}");
                    ok += 1;
                    original = patched;
                }
                Err(err) => assert!(!err.to_string().is_empty()),
            }
        }
    }
    assert!(
        ok > 1_000,
        "only {ok} patches applied: the generator is too hostile"
    );
}

#[test]
fn random_json_patches_never_panic() {
    let table = StrategyTable::default();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let ops = ["add", "remove", "replace", "move", "copy", "test", "bogus"];
    let paths = [
        "",
        "/",
        "/spec",
        "/spec/containers",
        "/spec/containers/-",
        "/spec/containers/0",
        "/spec/containers/1/name",
        "/spec/containers/99",
        "/spec/containers/-1",
        "/spec/containers/01",
        "/metadata/labels/a~1b",
        "/metadata/labels/~2",
        "/metadata/~",
        "/spec/containers/0/env/-",
        "/x/y/z",
        "/metadata/finalizers/0",
        "nope",
    ];
    let mut original = pod();
    for _ in 0..6_000 {
        let operations: Vec<Value> = (0..1 + rng.below(4))
            .map(|_| {
                json!({
                    "op": rng.pick(&ops),
                    "path": rng.pick(&paths),
                    "from": rng.pick(&paths),
                    "value": random_value(&mut rng, 2),
                })
            })
            .collect();
        let body = Value::from(operations).to_string();
        if let Ok(patched) = apply(&original, body.as_bytes(), PatchType::Json, None, &table) {
            original = patched;
        }
        if rng.below(50) == 0 {
            original = pod();
        }
    }
}
