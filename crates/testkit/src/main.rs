//! `cooper-testkit images TAG…`: builds the local test image and tags it; `cooper-testkit
//! restic-image`: builds the local restic image (used by scripts and benchmarks).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("images") => {
            async {
                let docker = cooper_testkit::local_docker().await?;
                let tags: Vec<&str> = args[1..].iter().map(String::as_str).collect();
                cooper_testkit::ensure_images(&docker, &tags).await
            }
            .await
        }
        Some("restic-image") => {
            async {
                let docker = cooper_testkit::local_docker().await?;
                cooper_testkit::ensure_restic_image(&docker).await?;
                println!("{}", cooper_testkit::RESTIC_IMAGE);
                Ok(())
            }
            .await
        }
        _ => Err(anyhow::anyhow!(
            "usage: cooper-testkit images TAG... | cooper-testkit restic-image"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
