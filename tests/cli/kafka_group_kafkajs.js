// kafka_group_kafkajs.js - kafkajs (npm, installed by kafka-groups.bats
// into tests/.npm) against the Kafka listener: a producer of N records,
// then a consumer group of two members that reads them all and commits.
//
//   NODE_PATH=tests/.npm/node_modules node kafka_group_kafkajs.js BOOTSTRAP TOPIC GROUP N
//
// Prints "produced N", then "consumed N distinct N committed N" (the sum of
// the group's committed offsets, fetched back with the admin client).
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic, group, nText] = process.argv.slice(2);
  const n = parseInt(nText, 10);
  const kafka = new Kafka({ clientId: 'kjs', brokers: [bootstrap], logLevel: logLevel.ERROR });
  const producer = kafka.producer();
  await producer.connect();
  const messages = [];
  for (let i = 0; i < n; i++) messages.push({ key: `k${i}`, value: `v${i}` });
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
  console.log(`produced ${n}`);

  const seen = new Map();
  const consumers = [];
  let done;
  const all = new Promise((resolve) => { done = resolve; });
  for (let c = 0; c < 2; c++) {
    const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: true,
      eachMessage: async ({ message }) => {
        const k = message.key.toString();
        seen.set(k, (seen.get(k) || 0) + 1);
        if (seen.size === n) done();
      },
    });
    consumers.push(consumer);
  }
  const timer = setTimeout(() => done(), 30000);
  await all;
  clearTimeout(timer);
  for (const consumer of consumers) await consumer.disconnect(); // commits what was read
  let total = 0;
  for (const v of seen.values()) total += v;
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  let committed = 0;
  for (const t of offsets) for (const p of t.partitions) committed += Math.max(0, parseInt(p.offset, 10));
  await admin.disconnect();
  console.log(`consumed ${total} distinct ${seen.size} committed ${committed}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
