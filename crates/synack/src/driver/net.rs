//! [`Net`]: the handle on a running driver that sockets are made from.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use synack_core::{Instant, Stack};

use super::builder::NetBuilder;
use super::shared::{Locked, Shared};
use super::DriverStats;
use crate::device::Device;

/// A running stack on a packet device: the handle sockets are made from.
///
/// Cloning is cheap; the driver thread stops when the last clone and the
/// last socket made from it are dropped (or at [`Net::shutdown`]).
#[derive(Clone)]
pub struct Net {
    pub(super) shared: Arc<Shared>,
    pub(super) owner: Arc<Owner>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("device", &self.shared.name)
            .field("capabilities", &self.shared.caps)
            .finish()
    }
}

impl Net {
    /// Starts describing a driver on synack's own TUN device `tun` (opened,
    /// and created when absent, at [`NetBuilder::start`]).
    pub fn builder(tun: &str) -> NetBuilder {
        NetBuilder::for_tun(tun)
    }

    /// Starts describing a driver on a device the application brings: a
    /// TUN descriptor it opened ([`crate::device::FdDevice`]), in-memory
    /// queues ([`crate::device::channel`]), or its own [`Device`].
    ///
    /// ```no_run
    /// let (device, port) = synack::device::channel(1500);
    /// let net = synack::Net::builder_with_device(device)
    ///     .addr("10.0.0.2".parse().unwrap())
    ///     .start()?;
    /// // `port` carries the packets: port.send(..) in, port.recv() out.
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder_with_device(device: impl Device) -> NetBuilder {
        NetBuilder::for_device(Box::new(device))
    }

    /// True when the device does checksum and segmentation offload.
    pub fn offload(&self) -> bool {
        self.shared.caps.offload
    }

    /// The device's capabilities (as it said when the driver started).
    pub fn capabilities(&self) -> crate::device::Capabilities {
        self.shared.caps
    }

    /// The device's interface name (empty for a device that has none).
    pub fn tun_name(&self) -> &str {
        self.shared.name.as_deref().unwrap_or("")
    }

    /// The driver's counters.
    pub fn driver_stats(&self) -> DriverStats {
        self.shared.lock().stats.clone()
    }

    /// Runs `f` on the stack (for counters and inspection), then sends what
    /// it queued.
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        let mut g = self.shared.lock();
        let r = f(&mut g.stack);
        self.shared.drain(&mut g);
        r
    }

    /// Stops the driver thread and waits for it; flushes trace and capture.
    /// Sockets still open stop working (their calls time out or fail).
    pub fn shutdown(&self) {
        self.owner.stop();
    }

    /// The stack's clock now.
    pub fn now(&self) -> Instant {
        self.shared.now()
    }

    /// Takes the stack's lock for a socket call.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            shared: &self.shared,
            g: self.shared.lock(),
        }
    }
}

/// Stops the thread when the last handle goes.
pub(super) struct Owner {
    pub(super) shared: Arc<Shared>,
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
}

impl Owner {
    fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake();
        let t = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
        let mut g = self.shared.lock();
        if let Some(w) = g.trace.as_mut() {
            let _ = w.flush();
        }
        if let Some(w) = g.pcap.as_mut() {
            let _ = w.flush();
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.stop();
    }
}
