//! The sample as a user starts from it: copied out of the workspace with its
//! standalone manifest (crate versions, the project's crates only), pointed
//! at this workspace's crates with `[patch.crates-io]`, then built and tested
//! offline by cargo.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The project's crates the copy uses, by their directory in the workspace.
const CRATES: &[(&str, &str)] = &[
    ("cloudstate-sdk", "cloudstate-sdk"),
    ("cloudstate-build", "cloudstate-build"),
    ("cloudstate-macros", "cloudstate-macros"),
    ("cloudstate-devproxy", "cloudstate-devproxy"),
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_sample_builds_and_tests_as_a_crate_of_its_own() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = sample.parent().and_then(Path::parent).unwrap();
    let copy: PathBuf =
        std::env::temp_dir().join(format!("cloudstate-standalone-cart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(copy.join("tests")).unwrap();
    for dir in ["src", "proto"] {
        copy_dir(&sample.join(dir), &copy.join(dir));
    }
    std::fs::copy(sample.join("build.rs"), copy.join("build.rs")).unwrap();
    // The unit tests need nothing but the SDK's test kit.
    std::fs::copy(sample.join("tests/unit.rs"), copy.join("tests/unit.rs")).unwrap();

    let manifest = std::fs::read_to_string(sample.join("standalone.Cargo.toml")).unwrap();
    let mut section = "";
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section.ends_with("dependencies]") && line.contains('=') && !line.starts_with('#')
        {
            let name = line.split('=').next().unwrap().trim();
            assert!(
                ["cloudstate-sdk", "cloudstate-build", "cloudstate-devproxy"].contains(&name),
                "the standalone manifest names [{name}]: a user crate needs only the project's crates"
            );
        }
    }
    let mut patched = format!("{manifest}\n[workspace]\n\n[patch.crates-io]\n");
    for (name, dir) in CRATES {
        let path = workspace.join(dir);
        patched.push_str(&format!(
            "{name} = {{ path = {:?} }}\n",
            path.display().to_string()
        ));
    }
    std::fs::write(copy.join("Cargo.toml"), patched).unwrap();
    // The same versions as the workspace, so nothing needs downloading.
    std::fs::copy(workspace.join("Cargo.lock"), copy.join("Cargo.lock")).unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // Its own target directory: the workspace's is locked by the running cargo.
    let target = workspace.join("target").join("standalone-template");
    let output = Command::new(cargo)
        .args(["test", "--offline", "--quiet"])
        .current_dir(&copy)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .expect("cargo runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the copy did not build and test:\n{report}"
    );
    assert!(report.contains("test result: ok"), "{report}");
    let _ = std::fs::remove_dir_all(&copy);
}
