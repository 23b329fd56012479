// The Queue ETL parts of the task editor: the brokers (RavenDB's Studio routes, one per
// broker, plus Corvid's NATS JetStream), a new connection string per broker, the queues'
// options, and the test answer (the CloudEvents each document would send).

import { h, field } from '../ui.js';

export const BROKERS = [
  { type: 'RabbitMq', label: 'RabbitMQ', route: 'databases/tasks/editRabbitMqEtlTask', supported: true },
  { type: 'Kafka', label: 'Kafka', route: 'databases/tasks/editKafkaEtlTask' },
  { type: 'AzureQueueStorage', label: 'Azure Queue Storage', route: 'databases/tasks/editAzureQueueStorageEtlTask', supported: true },
  { type: 'AmazonSqs', label: 'Amazon SQS', route: 'databases/tasks/editAmazonSqsEtlTask', supported: true },
  { type: 'Nats', label: 'NATS JetStream', route: 'databases/tasks/editNatsEtlTask', supported: true },
];

/** The broker of an editor route, or null when the route is not a Queue ETL one. */
export function brokerOfPath(path) {
  return BROKERS.find((it) => path.endsWith(it.route)) || null;
}

export function brokerOfType(type) {
  return BROKERS.find((it) => it.type === type) || { type, label: type || 'Queue', route: 'databases/tasks/editRabbitMqEtlTask' };
}

export function queueExample(broker) {
  if (broker.type === 'RabbitMq') {
    return `// Each loadTo<Exchange>() call publishes one CloudEvent; the routing key is optional.
loadToOrders({
    Id: id(this),
    Total: this.Total
}, 'orders', { Type: 'orders.changed' });`;
  }
  return `// Each loadTo<Queue>() call publishes one CloudEvent (id, type, source, partitionkey
// default to the change vector, ravendb.etl.put, this server and the document id).
loadToOrders({
    Id: id(this),
    Total: this.Total
}, { Type: 'orders.changed' });`;
}

/** How an existing connection string is shown in the picker. */
export function connectionLabel(connection) {
  const where = connection.RabbitMqConnectionSettings?.ConnectionString
    || connection.KafkaConnectionSettings?.BootstrapServers
    || (connection.NatsConnectionSettings?.Servers || []).join(', ')
    || connection.AmazonSqsConnectionSettings?.ServiceUrl
    || connection.AmazonSqsConnectionSettings?.Basic?.RegionName
    || (connection.AzureQueueStorageConnectionSettings ? 'Azure Storage' : '');
  return `${connection.Name} (${where || connection.BrokerType})`;
}

/** The fields of a new connection string for `broker`; `value(name)` gives its JSON. */
export function queueConnectionFields(broker) {
  const input = (placeholder, type = 'text') => h('input', { type, placeholder, autocomplete: 'off' });
  switch (broker.type) {
    case 'RabbitMq': {
      const uri = input('amqp://user:password@rabbit.example:5672/%2f');
      return {
        parts: [field('RabbitMQ connection string (amqp:// URI)', uri)],
        value: () => ({ RabbitMqConnectionSettings: { ConnectionString: uri.value.trim() } }),
        check: () => (/:\*{5}@/.test(uri.value) ? 'Enter the password: the stored one is never shown.' : ''),
      };
    }
    case 'Kafka': {
      const servers = input('kafka1.example:9092,kafka2.example:9092');
      const options = h('textarea', { rows: 3, placeholder: 'security.protocol=SASL_SSL\nsasl.username=etl' });
      return {
        parts: [h('div', { class: 'row' }, field('Bootstrap servers', servers),
          field('Connection options (key=value per line)', options))],
        value: () => ({
          KafkaConnectionSettings: {
            BootstrapServers: servers.value.trim(),
            ConnectionOptions: Object.fromEntries(options.value.split('\n').map((line) => line.trim()).filter(Boolean)
              .map((line) => { const at = line.indexOf('='); return at < 0 ? [line, ''] : [line.slice(0, at).trim(), line.slice(at + 1).trim()]; })),
          },
        }),
        check: () => '',
      };
    }
    case 'AzureQueueStorage': {
      const text = input('DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…', 'password');
      return {
        parts: [field('Azure Storage connection string', text)],
        value: () => ({ AzureQueueStorageConnectionSettings: { ConnectionString: text.value.trim() } }),
        check: () => '',
      };
    }
    case 'AmazonSqs': {
      const accessKey = input('AKIA…');
      const secretKey = input('', 'password');
      const region = input('us-east-1');
      const serviceUrl = input('(AWS; or an endpoint such as http://127.0.0.1:4566)');
      return {
        parts: [h('div', { class: 'row' }, field('Access key', accessKey), field('Secret key', secretKey), field('Region', region)),
          field('Service URL', serviceUrl)],
        value: () => ({
          AmazonSqsConnectionSettings: {
            Basic: { AccessKey: accessKey.value.trim(), SecretKey: secretKey.value, RegionName: region.value.trim() },
            ...(serviceUrl.value.trim() ? { ServiceUrl: serviceUrl.value.trim() } : {}),
          },
        }),
        check: () => '',
      };
    }
    default: {
      const servers = h('textarea', { rows: 2, placeholder: 'nats://127.0.0.1:4222' });
      const stream = input('(one stream per subject)');
      return {
        parts: [h('div', { class: 'row' }, field('Servers (one per line)', servers), field('Stream', stream))],
        value: () => ({
          NatsConnectionSettings: {
            Servers: servers.value.split(/\s+/).map((it) => it.trim()).filter(Boolean),
            ...(stream.value.trim() ? { Stream: stream.value.trim() } : {}),
          },
        }),
        check: () => '',
      };
    }
  }
}

/** The `Queues` options: per queue, delete processed documents (the outbox) and send deletes. */
export function queuesEditor(initial) {
  const rows = h('div');
  const error = h('div', { class: 'field-error', role: 'alert' });
  const items = [];
  function addRow(queue) {
    const name = h('input', { value: queue.Name || '', placeholder: 'Queue name', 'aria-label': 'Queue name', autocomplete: 'off' });
    const deleteProcessed = h('input', { type: 'checkbox', checked: Boolean(queue.DeleteProcessedDocuments), 'aria-label': 'Delete processed documents' });
    const sendDeletes = h('input', { type: 'checkbox', checked: Boolean(queue.SendDeletes), 'aria-label': 'Send deletes' });
    const row = h('div', { class: 'tables-row' }, name,
      h('label', { class: 'inline' }, deleteProcessed, ' Delete processed documents'),
      h('label', { class: 'inline' }, sendDeletes, ' Send deletes'),
      h('button', { type: 'button', class: 'secondary', onclick: () => { items.splice(items.indexOf(item), 1); row.remove(); } }, 'Remove queue'));
    const item = {
      value: () => ({ Name: name.value.trim(), DeleteProcessedDocuments: deleteProcessed.checked, SendDeletes: sendDeletes.checked }),
    };
    items.push(item);
    rows.append(row);
  }
  for (const queue of initial) addRow(queue);
  const el = h('div', { class: 'field' },
    h('p', { class: 'muted' }, 'Only queues that need an option are listed; every queue a script loads to is published to.'),
    rows, h('button', { type: 'button', class: 'secondary', onclick: () => addRow({}) }, 'Add queue options'), error);
  return {
    el,
    value: () => items.map((it) => it.value()).filter((it) => it.Name),
    setError: (message) => { error.textContent = message || ''; },
  };
}

/** The messages a document would publish, per queue, with their CloudEvents attributes. */
export function queueTestResult(answer) {
  const parts = [h('h3', {}, 'Messages that would be published')];
  const summary = answer?.Summary || [];
  if (!summary.length) parts.push(h('p', { class: 'muted' }, 'Nothing: the script loads nothing for this document.'));
  for (const queue of summary) {
    parts.push(h('div', { class: 'sql-table' }, h('strong', {}, queue.QueueName || '(default exchange)'),
      (queue.Messages || []).map((message) => h('pre', { class: 'out' },
        Object.entries(message.Attributes || {}).map(([name, value]) => `${name}: ${value}`).join('\n'),
        message.RoutingKey ? `\nrouting key: ${message.RoutingKey}` : '',
        message.DeleteProcessedDocument ? '\n(the document is deleted once the broker acknowledged it)' : '',
        message.Body === null || message.Body === undefined ? '' : `\n\n${JSON.stringify(message.Body, null, 2)}`))));
  }
  return parts;
}
