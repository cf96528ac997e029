(import 'ring.libsonnet') +
(import 'rollout.libsonnet') +
(import 'ingester.libsonnet') +
(import 'ringwatch.libsonnet') +
(import 'inhibit.libsonnet')
