//! The chaos runner's own fault proxy: a TCP relay on a loopback port that the runner places
//! between its sessions and the target, so network faults on the prober's path need nothing on
//! the target's host. Faults are switched per window; with none, bytes pass untouched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the proxy does to traffic while a fault window is open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NetFault {
    /// Forward untouched.
    None,
    /// Hold every chunk from the target `delay` plus a uniform `0..jitter` before delivering it.
    Latency { delay: Duration, jitter: Duration },
    /// Reset (RST) every open connection when the window opens and every new one on accept.
    Reset,
    /// Forward nothing either way; held bytes flow again when the window closes (as TCP
    /// retransmission would), so only requests that outlive their timeout fail.
    Blackhole,
    /// Cap each direction of each connection to this many bytes per second.
    Bandwidth { bytes_per_s: u64 },
}

/// Counters of what the proxy did (for the report and tests).
#[derive(Debug, Default)]
pub struct ProxyCounters {
    pub connections: AtomicU64,
    pub resets: AtomicU64,
}

/// A running fault proxy; stops when dropped or `stop` is called.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<NetFault>,
    counters: Arc<ProxyCounters>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl FaultProxy {
    /// Listen on a free loopback port and relay every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (fault, rx) = watch::channel(NetFault::None);
        let counters = Arc::new(ProxyCounters::default());
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(accept_loop(listener, upstream, rx, Arc::clone(&counters), stop.clone(), tasks.clone()));
        Ok(FaultProxy { addr, fault, counters, stop, tasks })
    }

    /// The address the runner's sessions connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switch the fault in force (`NetFault::None` ends a window).
    pub fn set(&self, fault: NetFault) {
        self.fault.send_replace(fault);
    }

    pub fn counters(&self) -> &ProxyCounters {
        &self.counters
    }

    /// Close the listener and every relayed connection, and wait for their tasks.
    pub async fn stop(self) {
        self.stop.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    fault: watch::Receiver<NetFault>,
    counters: Arc<ProxyCounters>,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((client, _)) = accepted else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let (fault, counters, stop) = (fault.clone(), Arc::clone(&counters), stop.clone());
        tasks.spawn(async move {
            if let Err(e) = relay(client, upstream, fault, &counters, stop).await {
                tracing::debug!(error = %e, "Proxied connection ended with an error");
            }
        });
    }
}

/// Drop `sock` with SO_LINGER 0, which sends RST instead of FIN.
fn reset(sock: TcpStream, counters: &ProxyCounters) {
    counters.resets.fetch_add(1, Ordering::Relaxed);
    let _ = socket_linger_zero(&sock);
    drop(sock);
}

fn socket_linger_zero(sock: &TcpStream) -> std::io::Result<()> {
    #[allow(deprecated)] // set_linger blocks on close only with a non-zero linger; ours is zero.
    sock.set_linger(Some(Duration::ZERO))
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut fault: watch::Receiver<NetFault>,
    counters: &ProxyCounters,
    stop: CancellationToken,
) -> std::io::Result<()> {
    // A blackhole holds new connections too: wait for it to lift before dialling the target.
    loop {
        match *fault.borrow_and_update() {
            NetFault::Reset => {
                reset(client, counters);
                return Ok(());
            }
            NetFault::Blackhole => {}
            _ => break,
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            changed = fault.changed() => if changed.is_err() { return Ok(()) },
        }
    }
    let mut server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(e) => {
            // The target is down: the client sees a reset, as it would with no proxy.
            reset(client, counters);
            return Err(e);
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let reset_now = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let up = pump(cr, sw, fault.clone(), false);
        let down = pump(sr, cw, fault.clone(), true);
        let mut watcher = fault.clone();
        let wait_reset = async move {
            loop {
                if *watcher.borrow_and_update() == NetFault::Reset {
                    return;
                }
                if watcher.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = async { tokio::join!(up, down) } => false,
            _ = wait_reset => true,
            _ = stop.cancelled() => false,
        }
    };
    if reset_now {
        reset(client, counters);
    }
    Ok(())
}

/// Copy one direction, applying the fault in force to each chunk. `downstream` is the target's
/// answers (where latency is added, so each request/response pays it once). Reading and writing
/// are decoupled so a held chunk never delays the reading (and timing) of the next one.
async fn pump<R, W>(mut from: R, mut to: W, fault: watch::Receiver<NetFault>, downstream: bool)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(64);
    let mut read_fault = fault.clone();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            wait_while_blackholed(&mut read_fault).await;
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if tx.send((Instant::now(), buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let mut write_fault = fault;
    let writer = async move {
        // Chunks never leave in an order other than their arrival, whatever the jitter.
        let mut not_before = Instant::now();
        'chunks: while let Some((arrived, data)) = rx.recv().await {
            wait_while_blackholed(&mut write_fault).await;
            let current = *write_fault.borrow();
            match current {
                NetFault::Latency { delay, jitter } if downstream => {
                    let extra = if jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        Duration::from_micros(rand::rng().random_range(0..jitter.as_micros() as u64))
                    };
                    not_before = not_before.max(arrived + delay + extra);
                    tokio::time::sleep_until(not_before).await;
                    if to.write_all(&data).await.is_err() {
                        break;
                    }
                }
                NetFault::Bandwidth { bytes_per_s } => {
                    let rate = bytes_per_s.max(1);
                    // Pieces of a tenth of a second keep the pace even for large chunks.
                    let piece = ((rate / 10).max(1) as usize).min(data.len()).max(1);
                    for part in data.chunks(piece) {
                        if to.write_all(part).await.is_err() {
                            break 'chunks;
                        }
                        tokio::time::sleep(Duration::from_secs_f64(part.len() as f64 / rate as f64)).await;
                    }
                }
                _ => {
                    if to.write_all(&data).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

async fn wait_while_blackholed(fault: &mut watch::Receiver<NetFault>) {
    while *fault.borrow_and_update() == NetFault::Blackhole {
        if fault.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..8 {
                let Ok((mut s, _)) = l.accept().await else { return };
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(addr: SocketAddr) -> std::io::Result<Duration> {
        let mut s = TcpStream::connect(addr).await?;
        let begin = Instant::now();
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        Ok(begin.elapsed())
    }

    #[tokio::test]
    async fn latency_reset_and_recovery() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let addr = proxy.local_addr();
        assert!(round_trip(addr).await.unwrap() < Duration::from_millis(100));
        proxy.set(NetFault::Latency { delay: Duration::from_millis(150), jitter: Duration::ZERO });
        let slow = round_trip(addr).await.unwrap();
        assert!(slow >= Duration::from_millis(150) && slow < Duration::from_secs(2), "{slow:?}");
        proxy.set(NetFault::Reset);
        assert!(round_trip(addr).await.is_err());
        assert!(proxy.counters().resets.load(Ordering::Relaxed) >= 1);
        proxy.set(NetFault::None);
        assert!(round_trip(addr).await.unwrap() < Duration::from_millis(100));
        proxy.stop().await;
    }

    #[tokio::test]
    async fn blackhole_holds_and_releases() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let addr = proxy.local_addr();
        proxy.set(NetFault::Blackhole);
        let held = tokio::time::timeout(Duration::from_millis(300), round_trip(addr)).await;
        assert!(held.is_err(), "a blackholed round trip must not complete");
        let pending = tokio::spawn(round_trip(addr));
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.set(NetFault::None);
        let done = tokio::time::timeout(Duration::from_secs(2), pending).await.unwrap().unwrap().unwrap();
        assert!(done >= Duration::from_millis(90), "{done:?}");
        proxy.stop().await;
    }
}
