//! What the HTTP and UDP servers have in common: a serving task over one
//! tracker state, stopped on request or when its owner is dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::swarm::Tracker;

#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) local_addr: SocketAddr,
    pub(crate) state: Arc<Mutex<Tracker>>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// Spawns `serve`, which must return once the token it is given is
    /// cancelled.
    pub(crate) fn spawn<F>(
        local_addr: SocketAddr,
        state: Arc<Mutex<Tracker>>,
        serve: impl FnOnce(CancellationToken) -> F,
    ) -> Running
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(shutdown.clone()));
        Running {
            local_addr,
            state,
            shutdown,
            task: Some(task),
        }
    }

    /// Cancels the task and waits for it to end.
    pub(crate) async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
