//! The answer to a command sent to a driver task.

use tokio::sync::{mpsc, oneshot};

/// Waits for the answer to a command sent on `commands`, or `None` once
/// the task that reads `commands` has stopped without giving one.
///
/// Waiting on `answer` alone is not enough: a command queued in the very
/// moment its reader stops can outlive it in the channel (tokio's receiver
/// drains the queue when it is dropped, and a sender that had its permit
/// already may push after that), and the reply sender inside it then lives
/// as long as any sender does, never answering. Seen in dsys-consensus's
/// driver about once in 150 to 300 runs of a shutdown racing 200
/// proposals on a loaded machine. An answer given before the reader
/// stopped is still returned.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tokio::sync::{mpsc, oneshot};
///
/// let (commands, mut reader) = mpsc::channel::<oneshot::Sender<u32>>(8);
/// let task = tokio::spawn(async move {
///     if let Some(reply) = reader.recv().await {
///         let _ = reply.send(7);
///     }
///     // The task ends: anything queued later is never answered.
/// });
/// let (reply, answer) = oneshot::channel();
/// commands.send(reply).await.expect("the task runs");
/// assert_eq!(dsys_net::answered(answer, &commands).await, Some(7));
/// task.await.expect("no panic");
/// let (reply, answer) = oneshot::channel();
/// let _ = commands.send(reply).await; // fails: the reader is gone
/// assert_eq!(dsys_net::answered(answer, &commands).await, None);
/// # }
/// ```
pub async fn answered<T, C>(
    mut answer: oneshot::Receiver<T>,
    commands: &mpsc::Sender<C>,
) -> Option<T> {
    tokio::select! {
        biased;
        result = &mut answer => result.ok(),
        // The reader is gone: an answer it gave before is still there.
        () = commands.closed() => answer.try_recv().ok(),
    }
}
