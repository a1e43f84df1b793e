"""
edxbus_openedx: an openedx-events event bus backend for edxbus (Apache Pulsar).

    EVENT_BUS_PRODUCER = "edxbus_openedx.create_producer"
    EVENT_BUS_CONSUMER = "edxbus_openedx.EdxbusConsumer"

The producer POSTs each event's Avro binary to edxbus's HTTP ingest from a
background thread; the consumer is the HTTP endpoint `edxbus consume
--deliver-to` pushes events to, run by `manage.py consume_events`. See the
package README for the settings, the push contract and the guarantees.
"""
from .consumer import EdxbusConsumer
from .producer import EdxbusProducer, ProducerConfig, create_producer

__version__ = "0.1.0"

__all__ = ["EdxbusConsumer", "EdxbusProducer", "ProducerConfig", "create_producer", "__version__"]
