//! How much the SQLite store keeps for a given load: the shopping cart
//! (a snapshot every 5 events) behind the dev proxy, `ADDS` adds of new
//! products spread over `CARTS` carts over HTTP/JSON, then the database's
//! size by table.
//!
//! ```sh
//! cargo run --release -p cloudstate-devproxy --example storage -- [ADDS] [CARTS]
//! ```

use std::net::SocketAddr;
use std::path::Path;

use cloudstate_devproxy::Store;
use cloudstate_devproxy::local::Local;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let adds = args.next().transpose()?.unwrap_or(16_600);
    let carts = args.next().transpose()?.unwrap_or(100).max(1);
    let dir = std::env::temp_dir().join(format!("cloudstate-storage-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("store.db");
    let store = Store::sqlite(&db)?;
    let cart = shopping_cart::register(cloudstate_sdk::CloudState::new(), 5);
    let local = Local::start_with(cart, move |config| config.store = store).await?;
    let addr = local.addr();
    let workers: Vec<_> = (0..carts.min(8))
        .map(|worker| {
            tokio::spawn(async move {
                let mut n = worker;
                while n < adds {
                    let (cart, item) = (n % carts, n / carts);
                    let body = format!(
                        r#"{{"productId":"product-{item}","name":"Product number {item}","quantity":1}}"#
                    );
                    let status = post(addr, &format!("/cart/user-{cart}/items/add"), &body).await;
                    assert_eq!(status, 200, "add {n}");
                    n += carts.min(8);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    local.shutdown().await;
    report(&db, adds, carts)?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// One HTTP/1.1 POST on its own connection; the status code.
async fn post(addr: SocketAddr, path: &str, body: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn report(db: &Path, adds: usize, carts: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut size = std::fs::metadata(db)?.len();
    for suffix in ["-wal", "-shm"] {
        let mut other = db.as_os_str().to_owned();
        other.push(suffix);
        size += std::fs::metadata(&other).map_or(0, |m| m.len());
    }
    let conn = rusqlite::Connection::open(db)?;
    let pages = |pragma: &str| -> rusqlite::Result<i64> {
        conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
    };
    let page = pages("page_size")?;
    println!(
        "{adds} adds over {carts} carts: database {size} bytes on disk ({} pages in use, {} free)",
        pages("page_count")? - pages("freelist_count")?,
        pages("freelist_count")?
    );
    println!("  page size {page} bytes");
    for (table, column) in [("journal", "payload"), ("snapshot", "payload")] {
        let (rows, bytes): (i64, i64) = conn.query_row(
            &format!("SELECT count(*), coalesce(sum(length({column})), 0) FROM {table}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        println!("  {table}: {rows} rows, {bytes} payload bytes");
    }
    Ok(())
}
