/*
 * Raftka load generator: a librdkafka producer/consumer that is not the bottleneck.
 *
 *   loadgen produce -b HOST:PORT -t TOPIC [-p PARTITIONS] [-s RECORD_BYTES] [-n RECORDS]
 *                   [-a ACKS] [-r RATE_PER_S] [-w WARM_UP_RECORDS] [-z CODEC] [-S] [-X key=value ...]
 *   loadgen consume -b HOST:PORT -t TOPIC [-p PARTITIONS] [-n RECORDS] [-X key=value ...]
 *
 * Prints progress to stderr once a second and one JSON object with the results to stdout,
 * so that bench scripts can compare runs without parsing prose. With -S (produce), librdkafka's statistics
 * of each second of the measured part go to stdout first, a line each: "stats " and its JSON.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what, const char *detail) {
  fprintf(stderr, "loadgen: %s: %s\n", what, detail);
  exit(2);
}

struct options {
  const char *mode, *brokers, *topic, *codec;
  int partitions, record_bytes, acks, statistics;
  long records, warm_up_records;
  double rate;
  const char *extra[32];
  int extra_count;
};

struct produce_state {
  int64_t *latencies_us; /* one slot per delivered record */
  int64_t *enqueued_us;  /* when each of them was produced, in the same order */
  long delivered, failed;
  const char *first_error;
  /* now_us() when the measured part started (INT64_MAX before): statistics before it are not printed. */
  int64_t measured_from;
};

/* Latency percentiles in ms. */
struct latency_summary {
  double p50, p99, p999, max;
};

static int compare_int64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int64_t percentile(int64_t *sorted, long count, double p) {
  if (count == 0) return 0;
  long index = (long)(p * (double)(count - 1) + 0.5);
  return sorted[index];
}

/* The percentiles of `count` latencies; sorts them in place. */
static struct latency_summary summarise(int64_t *latencies_us, long count) {
  qsort(latencies_us, (size_t)count, sizeof(int64_t), compare_int64);
  struct latency_summary s = {
      .p50 = percentile(latencies_us, count, 0.50) / 1000.0,
      .p99 = percentile(latencies_us, count, 0.99) / 1000.0,
      .p999 = percentile(latencies_us, count, 0.999) / 1000.0,
      .max = count ? latencies_us[count - 1] / 1000.0 : 0.0,
  };
  return s;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
  (void)rk;
  struct produce_state *state = opaque;
  if (msg->err) {
    state->failed++;
    if (!state->first_error) state->first_error = rd_kafka_err2str(msg->err);
    return;
  }
  int64_t enqueued = (int64_t)(intptr_t)msg->_private;
  state->enqueued_us[state->delivered] = enqueued;
  state->latencies_us[state->delivered++] = now_us() - enqueued;
}

static rd_kafka_conf_t *base_conf(const struct options *o, char *err, size_t err_size) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, err, err_size) != RD_KAFKA_CONF_OK)
    die("bootstrap.servers", err);
  for (int i = 0; i < o->extra_count; i++) {
    char key[256];
    const char *eq = strchr(o->extra[i], '=');
    if (!eq || (size_t)(eq - o->extra[i]) >= sizeof key) die("-X expects key=value", o->extra[i]);
    memcpy(key, o->extra[i], (size_t)(eq - o->extra[i]));
    key[eq - o->extra[i]] = 0;
    if (rd_kafka_conf_set(conf, key, eq + 1, err, err_size) != RD_KAFKA_CONF_OK) die(key, err);
  }
  return conf;
}

/* This process's user + system CPU so far, in seconds (all its threads, librdkafka's included). */
static double cpu_seconds(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

/* librdkafka's windowed statistics (its per-broker internal queue, output buffer and round-trip times),
 * so that a bench can tell the client's own delays from the server's. */
static int on_statistics(rd_kafka_t *rk, char *json, size_t json_len, void *opaque) {
  (void)rk;
  const struct produce_state *state = opaque;
  if (now_us() >= state->measured_from) {
    fputs("stats ", stdout);
    fwrite(json, 1, json_len, stdout);
    fputc('\n', stdout);
  }
  return 0; /* librdkafka frees json */
}

static int run_produce(const struct options *o) {
  char err[512], acks[16];
  struct produce_state state = {0};
  long total = o->warm_up_records + o->records;
  state.latencies_us = calloc((size_t)total + (size_t)o->partitions, sizeof(int64_t));
  state.enqueued_us = calloc((size_t)total + (size_t)o->partitions, sizeof(int64_t));
  if (!state.latencies_us || !state.enqueued_us) die("calloc", "out of memory");

  snprintf(acks, sizeof acks, "%d", o->acks);
  const char *defaults[][2] = {
      {"linger.ms", "5"},
      {"batch.size", "1000000"},
      {"queue.buffering.max.messages", "1000000"},
      {"queue.buffering.max.kbytes", "2097151"},
      {"acks", acks},
      {"compression.codec", o->codec},
      {"enable.idempotence", "false"},
  };
  rd_kafka_conf_t *conf = base_conf(o, err, sizeof err);
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
    /* -X overrides win: only set a default the user did not give. */
    int given = 0;
    for (int j = 0; j < o->extra_count; j++)
      if (strncmp(o->extra[j], defaults[i][0], strlen(defaults[i][0])) == 0 &&
          o->extra[j][strlen(defaults[i][0])] == '=')
        given = 1;
    if (!given && rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], err, sizeof err) != RD_KAFKA_CONF_OK)
      die(defaults[i][0], err);
  }
  rd_kafka_conf_set_opaque(conf, &state);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  state.measured_from = INT64_MAX;
  if (o->statistics) {
    if (rd_kafka_conf_set(conf, "statistics.interval.ms", "1000", err, sizeof err) != RD_KAFKA_CONF_OK)
      die("statistics.interval.ms", err);
    rd_kafka_conf_set_stats_cb(conf, on_statistics);
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) die("rd_kafka_new", err);
  rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, o->topic, NULL);

  char *payload = malloc((size_t)o->record_bytes);
  for (int i = 0; i < o->record_bytes; i++) payload[i] = (char)('a' + (i * 7 + i / 13) % 26);

  /* Warm-up, not timed or counted: one record per partition, delivered before the clock starts, so the
   * connection, ApiVersions and the metadata of a just-created topic are not part of the latencies. */
  for (int p = 0; p < o->partitions; p++)
    if (rd_kafka_produce(topic, p, RD_KAFKA_MSG_F_COPY, payload, (size_t)o->record_bytes, NULL, 0, NULL) == -1)
      die("warm-up produce", rd_kafka_err2str(rd_kafka_last_error()));
  if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("warm-up", "not delivered within 30 s");
  if (state.failed) die("warm-up", state.first_error);
  state.delivered = 0;

  /* With -w, the first records run at the same rate but are left out of the results: what a broker does in
   * its first seconds at a rate it has not run at (docs/benchmarks.md, "Half-rate runs measured after a
   * warm-up") is reported apart from what it does from then on. measured_from is when the first measured
   * record goes. */
  int64_t start = now_us(), last_report = start, measured_from = o->warm_up_records > 0 ? INT64_MAX : start;
  state.measured_from = measured_from;
  double cpu_at_measuring = cpu_seconds();
  long sent = 0;
  while (sent < total) {
    if (sent == o->warm_up_records && measured_from == INT64_MAX) {
      measured_from = now_us();
      state.measured_from = measured_from;
      cpu_at_measuring = cpu_seconds();
      /* Callers that sample the server (its CPU, its histograms) start their measurement here. */
      fprintf(stderr, "loadgen: warm-up done, measuring\n");
      fflush(stderr);
    }
    if (o->rate > 0) {
      double due = (double)(now_us() - start) * o->rate / 1e6;
      if ((double)sent >= due) {
        rd_kafka_poll(rk, 0);
        usleep(200);
        continue;
      }
    }
    int partition = (int)(sent % o->partitions);
    if (rd_kafka_produce(topic, partition, RD_KAFKA_MSG_F_COPY, payload, (size_t)o->record_bytes, NULL, 0,
                         (void *)(intptr_t)now_us()) == -1) {
      rd_kafka_resp_err_t e = rd_kafka_last_error();
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 1);
        continue;
      }
      die("produce", rd_kafka_err2str(e));
    }
    sent++;
    if ((sent & 1023) == 0) {
      rd_kafka_poll(rk, 0);
      int64_t t = now_us();
      if (t - last_report >= 1000000) {
        fprintf(stderr, "loadgen: produced %ld/%ld, delivered %ld (%.0f records/s)\n", sent, total,
                state.delivered, (double)state.delivered * 1e6 / (double)(t - start));
        last_report = t;
      }
    }
  }
  while (state.delivered + state.failed < sent) {
    rd_kafka_poll(rk, 100);
    if (now_us() - start > 600 * 1000000LL) die("timeout", "records were not acknowledged within 10 minutes");
  }
  int64_t end = now_us();
  double measured_cpu_seconds = cpu_seconds() - cpu_at_measuring;
  double seconds = (double)(end - measured_from) / 1e6;

  /* The p99 of each whole second from the start, warm-up included, so that a transient shows where it is. */
  int whole_seconds = (int)((end - start) / 1000000);
  char by_second[4096] = "";
  size_t used = 0;
  int64_t *window = malloc(sizeof(int64_t) * (size_t)(state.delivered + 1));
  if (!window) die("malloc", "out of memory");
  for (int second = 0; second < whole_seconds && used + 16 < sizeof by_second; second++) {
    long count = 0;
    for (long i = 0; i < state.delivered; i++)
      if ((state.enqueued_us[i] - start) / 1000000 == second) window[count++] = state.latencies_us[i];
    used += (size_t)snprintf(by_second + used, sizeof by_second - used, "%s%.2f", second ? "," : "",
                             summarise(window, count).p99);
  }

  /* Records enqueued during the warm-up move to the front; the measured ones follow. */
  long warm_up = 0;
  for (long i = 0; i < state.delivered; i++) {
    if (state.enqueued_us[i] >= measured_from) continue;
    int64_t latency = state.latencies_us[i];
    state.latencies_us[i] = state.latencies_us[warm_up];
    state.latencies_us[warm_up++] = latency;
  }
  long measured = state.delivered - warm_up;
  struct latency_summary warm = summarise(state.latencies_us, warm_up);
  struct latency_summary l = summarise(state.latencies_us + warm_up, measured);
  free(window);
  printf("{\"mode\":\"produce\",\"records\":%ld,\"failed\":%ld,\"recordBytes\":%d,\"seconds\":%.3f,"
         "\"recordsPerSecond\":%.0f,\"mibPerSecond\":%.2f,\"latencyMs\":{\"p50\":%.3f,\"p99\":%.3f,"
         "\"p999\":%.3f,\"max\":%.3f},\"warmUp\":{\"records\":%ld,\"latencyMs\":{\"p50\":%.3f,\"p99\":%.3f,"
         "\"p999\":%.3f,\"max\":%.3f}},\"p99BySecondMs\":[%s],\"cpuSeconds\":%.3f,\"firstError\":%s%s%s}\n",
         measured, state.failed, o->record_bytes, seconds, (double)measured / seconds,
         (double)measured * o->record_bytes / seconds / 1048576.0, l.p50, l.p99, l.p999, l.max, warm_up,
         warm.p50, warm.p99, warm.p999, warm.max, by_second, measured_cpu_seconds, state.first_error ? "\"" : "",
         state.first_error ? state.first_error : "null", state.first_error ? "\"" : "");
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(rk);
  free(payload);
  free(state.latencies_us);
  free(state.enqueued_us);
  return state.failed ? 1 : 0;
}

static int run_consume(const struct options *o) {
  char err[512];
  rd_kafka_conf_t *conf = base_conf(o, err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", "raftka-loadgen", err, sizeof err);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_conf_set(conf, "fetch.max.bytes", "52428800", err, sizeof err);
  rd_kafka_conf_set(conf, "max.partition.fetch.bytes", "4194304", err, sizeof err);
  rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "1048576", err, sizeof err);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) die("rd_kafka_new", err);
  rd_kafka_poll_set_consumer(rk);
  /* Manual assignment from the beginning: measures fetch throughput, not group coordination. */
  rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(o->partitions);
  for (int p = 0; p < o->partitions; p++)
    rd_kafka_topic_partition_list_add(assignment, o->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_resp_err_t e = rd_kafka_assign(rk, assignment);
  if (e) die("assign", rd_kafka_err2str(e));

  long consumed = 0;
  int64_t bytes = 0, start = 0, last_report = now_us(), deadline = now_us() + 600 * 1000000LL;
  while (consumed < o->records) {
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
    if (now_us() > deadline) die("timeout", "records were not consumed within 10 minutes");
    if (!msg) continue;
    if (msg->err) {
      if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        fprintf(stderr, "loadgen: consume error: %s\n", rd_kafka_message_errstr(msg));
    } else {
      if (!start) start = now_us();
      consumed++;
      bytes += (int64_t)msg->len;
    }
    rd_kafka_message_destroy(msg);
    int64_t t = now_us();
    if (t - last_report >= 1000000) {
      fprintf(stderr, "loadgen: consumed %ld/%ld\n", consumed, o->records);
      last_report = t;
    }
  }
  double seconds = (double)(now_us() - start) / 1e6;
  printf("{\"mode\":\"consume\",\"records\":%ld,\"seconds\":%.3f,\"recordsPerSecond\":%.0f,"
         "\"mibPerSecond\":%.2f}\n",
         consumed, seconds, (double)consumed / seconds, (double)bytes / seconds / 1048576.0);
  rd_kafka_topic_partition_list_destroy(assignment);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen produce|consume -b HOST:PORT -t TOPIC [-p PARTITIONS] [-s RECORD_BYTES]\n"
          "               [-n RECORDS] [-a ACKS] [-r RATE_PER_S] [-w WARM_UP_RECORDS]\n"
          "               [-z none|gzip|snappy|lz4|zstd] [-S]\n"
          "               [-X librdkafka.key=value ...]\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct options o = {.brokers = "localhost:9092", .codec = "none", .partitions = 1, .record_bytes = 1024,
                      .acks = 1, .records = 100000};
  if (argc < 2) usage();
  o.mode = argv[1];
  int opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "b:t:p:s:n:a:r:w:z:SX:")) != -1) {
    switch (opt) {
      case 'b': o.brokers = optarg; break;
      case 't': o.topic = optarg; break;
      case 'p': o.partitions = atoi(optarg); break;
      case 's': o.record_bytes = atoi(optarg); break;
      case 'n': o.records = atol(optarg); break;
      case 'a': o.acks = atoi(optarg); break;
      case 'r': o.rate = atof(optarg); break;
      case 'w': o.warm_up_records = atol(optarg); break;
      case 'z': o.codec = optarg; break;
      case 'S': o.statistics = 1; break;
      case 'X':
        if (o.extra_count == 32) die("-X", "at most 32 overrides");
        o.extra[o.extra_count++] = optarg;
        break;
      default: usage();
    }
  }
  if (!o.topic || o.partitions < 1 || o.records < 1 || o.warm_up_records < 0 || o.record_bytes < 0) usage();
  if (strcmp(o.mode, "produce") == 0) return run_produce(&o);
  if (strcmp(o.mode, "consume") == 0) return run_consume(&o);
  usage();
  return 2;
}
