//! `--replay N`: entity activation. One protocol stream to a fresh entity:
//! `init`, a journal of N `ItemAdded` events, then one `GetCart`; timed from
//! the first event sent to the reply received. The same messages go to the
//! echo server, which decodes each one and answers only the command: the
//! cost of moving the journal through gRPC with no entity behind it.
//!
//! The messages are built before the timing starts and handed to the stream
//! in batches, so that the generator's share is the encoding alone. The
//! cart's reply must hold every replayed unit, which shows that each event
//! was applied.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cloudstate_sdk::payload;
use cloudstate_sdk::protocol::cloudstate::client_action::Action;
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, event_sourced_client::EventSourcedClient,
    event_sourced_stream_out::Message as Out,
};
use cloudstate_sdk::testkit::eventsourced as es;
use shopping_cart::proto::com::example::shoppingcart::{self as api, persistence as domain};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::transport::Channel;

use crate::proto::echo_client::EchoClient;
use crate::script::{PRODUCTS, check_reply, product};
use crate::{Options, Setup, Target, median};

/// Events per batch handed to the stream.
const BATCH: usize = 1024;
/// Events per second the target asks of the cart.
const TARGET_EVENTS_PER_SEC: f64 = 1_000_000.0;

/// Messages from a channel of batches, one at a time.
struct Batches {
    rx: mpsc::Receiver<Vec<EventSourcedStreamIn>>,
    current: std::vec::IntoIter<EventSourcedStreamIn>,
}

impl Stream for Batches {
    type Item = EventSourcedStreamIn;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(message) = self.current.next() {
                return Poll::Ready(Some(message));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.current = batch.into_iter(),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// The journal of entity `entity_id`: `n` events, one unit of a product each.
fn journal(n: usize) -> Vec<Vec<EventSourcedStreamIn>> {
    let events: Vec<_> = (0..PRODUCTS)
        .map(|k| {
            let (product_id, name) = product(k);
            payload::encode(&domain::ItemAdded {
                item: Some(domain::LineItem {
                    product_id,
                    name,
                    quantity: 1,
                }),
            })
        })
        .collect();
    let mut batches = Vec::with_capacity(n.div_ceil(BATCH));
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        let sequence = i64::try_from(i).unwrap_or(i64::MAX - 1) + 1;
        batch.push(es::event(sequence, events[i % PRODUCTS].clone()));
        if batch.len() == BATCH {
            batches.push(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// What one replay took, from the first event sent to the reply.
struct Replayed {
    elapsed: Duration,
    /// CPU time of the whole process (generator and server), where measurable.
    cpu_ns: Option<u64>,
}

/// One replay of `n` events into a fresh entity.
async fn once(
    target: Target,
    channel: Channel,
    n: usize,
    entity: &str,
) -> Result<Replayed, String> {
    let journal = journal(n);
    let command = es::command(
        1,
        entity,
        "GetCart",
        &api::GetShoppingCart {
            user_id: entity.to_owned(),
        },
    );
    let (tx, rx) = mpsc::channel(4);
    let input = Batches {
        rx,
        current: Vec::new().into_iter(),
    };
    let send = |batch| {
        let tx = tx.clone();
        async move {
            tx.send(batch)
                .await
                .map_err(|_| "the stream's input closed".to_owned())
        }
    };
    send(vec![es::init(shopping_cart::SERVICE, entity)]).await?;
    let call = tokio::spawn(async move {
        match target {
            Target::Echo => EchoClient::new(channel).echo(input).await,
            _ => EventSourcedClient::new(channel).handle(input).await,
        }
    });
    let mut output = call
        .await
        .map_err(|e| format!("the call task failed: {e}"))?
        .map_err(|status| format!("could not open a stream: {status}"))?
        .into_inner();
    let started = Instant::now();
    let cpu_start = crate::cpu::process_cpu_ns();
    for batch in journal {
        send(batch).await?;
    }
    send(vec![command]).await?;
    let reply = output
        .message()
        .await
        .map_err(|status| format!("the stream failed: {status}"))?
        .ok_or("the stream ended before the reply")?;
    let elapsed = started.elapsed();
    let cpu_ns = cpu_start
        .zip(crate::cpu::process_cpu_ns())
        .map(|(start, end)| end.saturating_sub(start));
    check_reply(&reply, 1)?;
    if target == Target::Cart {
        let units = replayed_units(&reply)?;
        if units != n as i64 {
            return Err(format!(
                "the cart holds {units} units after replaying {n} events of one unit"
            ));
        }
    }
    drop(tx);
    match tokio::time::timeout(crate::load::OPEN_CLOSE_TIMEOUT, output.message()).await {
        Ok(Ok(None)) => Ok(Replayed { elapsed, cpu_ns }),
        Ok(Ok(Some(extra))) => Err(format!("unexpected message at the end: {extra:?}")),
        Ok(Err(status)) => Err(format!("the stream ended with {status}")),
        Err(_) => Err("the stream did not end after its input did".to_owned()),
    }
}

/// The units in the cart a `GetCart` reply shows.
fn replayed_units(
    reply: &cloudstate_sdk::protocol::cloudstate::eventsourced::EventSourcedStreamOut,
) -> Result<i64, String> {
    let Some(Out::Reply(reply)) = &reply.message else {
        return Err("not a reply".to_owned());
    };
    let Some(Action::Reply(reply)) = reply.client_action.as_ref().and_then(|a| a.action.as_ref())
    else {
        return Err("not a reply action".to_owned());
    };
    let cart: api::Cart = payload::decode(reply.payload.as_ref().ok_or("no reply payload")?)
        .map_err(|e| e.to_string())?;
    Ok(cart.items.iter().map(|i| i64::from(i.quantity)).sum())
}

/// Runs the replay measurement and prints its report.
pub(crate) async fn run(options: &Options, setup: &Setup, n: usize) -> Result<(), String> {
    let targets: Vec<Target> = match options.only {
        Some(Target::Echo) => vec![Target::Echo],
        Some(_) => vec![Target::Cart],
        None => vec![Target::Cart, Target::Echo],
    };
    let channel = |target: Target| match target {
        Target::Echo => setup.echo_channels[0].clone(),
        _ => setup.cart_channels[0].clone(),
    };
    // Warm-up: a small replay of each, not counted.
    for &target in &targets {
        once(
            target,
            channel(target),
            n.min(1_000),
            &format!("replay-warmup-{target:?}"),
        )
        .await?;
    }
    let mut rates: Vec<Vec<f64>> = targets.iter().map(|_| Vec::new()).collect();
    let mut cpu_per_event: Vec<Vec<f64>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 0..options.rounds {
        for k in 0..targets.len() {
            let index = (k + round) % targets.len();
            let target = targets[index];
            let entity = format!("replay-{target:?}-r{round}");
            let replayed = once(target, channel(target), n, &entity)
                .await
                .map_err(|e| format!("{entity}: {e}"))?;
            rates[index].push(n as f64 / replayed.elapsed.as_secs_f64());
            if let Some(cpu_ns) = replayed.cpu_ns {
                cpu_per_event[index].push(cpu_ns as f64 / n as f64);
            }
        }
    }
    println!(
        "cloudstate-bench --replay {n}: init, {n} ItemAdded events and one GetCart on one \
         protocol stream to a fresh entity, timed from the first event to the reply; \
         in-process, 127.0.0.1, {} worker threads, median of {} round(s)",
        crate::tokio_worker_threads(),
        options.rounds
    );
    println!();
    println!(
        "{:>6} {:>14} {:>20} {:>14}",
        "server", "events/s", "(range)", "CPU per event"
    );
    let median_of = |t: Target| {
        targets
            .iter()
            .position(|x| *x == t)
            .map(|i| median(&rates[i]))
    };
    for ((target, r), cpu) in targets.iter().zip(&rates).zip(&cpu_per_event) {
        let min = r.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let cpu = if cpu.is_empty() {
            crate::dash()
        } else {
            format!("{:.0} ns", median(cpu))
        };
        println!(
            "{:>6} {:>14.0} {:>20} {:>14}",
            target.name(false),
            median(r),
            format!("{min:.0}-{max:.0}"),
            cpu
        );
    }
    println!(
        "(CPU per event: the whole process, the generator's encoding included; \
         on a busy machine it moves less than events/s)"
    );
    if let (Some(cart), Some(echo)) = (median_of(Target::Cart), median_of(Target::Echo)) {
        println!("cart/echo: {:.2}x", cart / echo);
    }
    if let Some(cart) = median_of(Target::Cart) {
        println!();
        println!(
            "target: cart replay >= {:.0} events/s: {cart:.0} -> {}",
            TARGET_EVENTS_PER_SEC,
            crate::verdict(cart >= TARGET_EVENTS_PER_SEC)
        );
    }
    Ok(())
}
