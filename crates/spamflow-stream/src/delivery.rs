//! Producer pieces shared by the service and the client tools: a delivery counter and a send
//! that waits while librdkafka's queue is full.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, ToBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, ProducerContext};
use rdkafka::statistics::Statistics;

/// Producer callbacks: counts failed deliveries.
#[derive(Debug, Default)]
pub(crate) struct DeliveryCounter {
    failed: AtomicU64,
}

impl DeliveryCounter {
    /// Failed deliveries since the last reset.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Starts counting from zero.
    pub(crate) fn reset(&self) {
        self.failed.store(0, Ordering::Relaxed);
    }
}

impl ClientContext for DeliveryCounter {
    fn stats(&self, _statistics: Statistics) {}
}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, "delivery failed");
        }
    }
}

/// Enqueues `record`, serving delivery reports while the local queue is full.
pub(crate) fn send_waiting<K, P>(
    producer: &BaseProducer<DeliveryCounter>,
    mut record: BaseRecord<'_, K, P>,
) -> KafkaResult<()>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => return Err(error),
        }
    }
}
