//! Writes every builtin document to a directory, laid out like the URL space
//! (`<dir>/openapi/v3`, `<dir>/openapi/v3/api/v1`, `<dir>/openapi/v2.json` and its protobuf
//! encoding `<dir>/openapi/v2.pb`), for inspection or a static server:
//! `cargo run -p skiff-openapi --example dump -- /tmp/openapi`.

use std::path::PathBuf;

use skiff_openapi::{Catalog, Documents};

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "openapi-dump".into()),
    );
    let catalog = Catalog::builtin();
    let docs = Documents::build(&catalog, catalog.builtin_kinds());
    let v3 = dir.join("openapi/v3");
    std::fs::create_dir_all(&v3)?;
    std::fs::write(v3.join("index.json"), docs.v3_index())?;
    for key in docs.v3_keys() {
        let Some((bytes, _)) = docs.v3_group_version(key) else {
            continue;
        };
        let path = v3.join(key).with_extension("json");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
    }
    std::fs::write(dir.join("openapi/v2.json"), docs.v2())?;
    std::fs::write(dir.join("openapi/v2.pb"), docs.v2_protobuf())?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}
