/* Out-of-line wrappers for DPDK's static-inline functions and macros, which
 * bindgen cannot bind. Each gw_ function is a one-line forward; keep them so. */
#ifndef GW_DPDK_SHIM_H
#define GW_DPDK_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_alarm.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_cycles.h>
#include <rte_thash.h>

uint16_t gw_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t gw_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

struct rte_mbuf *gw_pktmbuf_alloc(struct rte_mempool *mp);
int gw_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count);
void gw_pktmbuf_free(struct rte_mbuf *m);
char *gw_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
char *gw_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
int gw_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t gw_pktmbuf_tailroom(const struct rte_mbuf *m);

unsigned gw_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned n, unsigned *free_space);
unsigned gw_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned n, unsigned *available);
unsigned gw_ring_count(const struct rte_ring *r);

unsigned gw_lcore_id(void);
int gw_errno(void);
uint64_t gw_rdtsc(void);
uint32_t gw_softrss(uint32_t *input_tuple, uint32_t input_len, const uint8_t *rss_key);

/* Flag values that are macros bindgen cannot evaluate (RTE_BIT64 and shifts),
 * exported so the Rust constants can be checked against them in a test. */
extern const uint64_t gw_RTE_MBUF_F_RX_RSS_HASH;
extern const uint64_t gw_RTE_MBUF_F_RX_IP_CKSUM_MASK;
extern const uint64_t gw_RTE_MBUF_F_RX_IP_CKSUM_GOOD;
extern const uint64_t gw_RTE_MBUF_F_RX_IP_CKSUM_BAD;
extern const uint64_t gw_RTE_MBUF_F_RX_L4_CKSUM_MASK;
extern const uint64_t gw_RTE_MBUF_F_RX_L4_CKSUM_GOOD;
extern const uint64_t gw_RTE_MBUF_F_RX_L4_CKSUM_BAD;
extern const uint64_t gw_RTE_MBUF_F_TX_IPV4;
extern const uint64_t gw_RTE_MBUF_F_TX_IPV6;
extern const uint64_t gw_RTE_MBUF_F_TX_IP_CKSUM;
extern const uint64_t gw_RTE_MBUF_F_TX_TCP_CKSUM;
extern const uint64_t gw_RTE_MBUF_F_TX_UDP_CKSUM;
extern const uint64_t gw_RTE_MBUF_F_TX_L4_MASK;
extern const uint64_t gw_RTE_ETH_RX_OFFLOAD_RSS_HASH;
extern const uint64_t gw_RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
extern const uint64_t gw_RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
extern const uint64_t gw_RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
extern const uint64_t gw_RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
extern const uint64_t gw_RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
extern const uint64_t gw_RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
extern const uint64_t gw_RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
extern const uint64_t gw_RTE_ETH_RSS_IP;
extern const uint64_t gw_RTE_ETH_RSS_TCP;
extern const uint64_t gw_RTE_ETH_RSS_UDP;
extern const uint32_t gw_RTE_RING_NAMESIZE;
extern const uint32_t gw_RTE_MEMPOOL_NAMESIZE;

#endif
