#include "shim.h"

uint16_t gw_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{ return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts); }
uint16_t gw_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{ return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts); }

struct rte_mbuf *gw_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int gw_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, count); }
void gw_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *gw_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
char *gw_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
int gw_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint16_t gw_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }

unsigned gw_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned n, unsigned *free_space)
{ return rte_ring_enqueue_burst(r, obj_table, n, free_space); }
unsigned gw_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned n, unsigned *available)
{ return rte_ring_dequeue_burst(r, obj_table, n, available); }
unsigned gw_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }

unsigned gw_lcore_id(void) { return rte_lcore_id(); }
int gw_errno(void) { return rte_errno; }
uint64_t gw_rdtsc(void) { return rte_rdtsc(); }
uint32_t gw_softrss(uint32_t *input_tuple, uint32_t input_len, const uint8_t *rss_key)
{ return rte_softrss(input_tuple, input_len, rss_key); }

const uint64_t gw_RTE_MBUF_F_RX_RSS_HASH = RTE_MBUF_F_RX_RSS_HASH;
const uint64_t gw_RTE_MBUF_F_RX_IP_CKSUM_MASK = RTE_MBUF_F_RX_IP_CKSUM_MASK;
const uint64_t gw_RTE_MBUF_F_RX_IP_CKSUM_GOOD = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
const uint64_t gw_RTE_MBUF_F_RX_IP_CKSUM_BAD = RTE_MBUF_F_RX_IP_CKSUM_BAD;
const uint64_t gw_RTE_MBUF_F_RX_L4_CKSUM_MASK = RTE_MBUF_F_RX_L4_CKSUM_MASK;
const uint64_t gw_RTE_MBUF_F_RX_L4_CKSUM_GOOD = RTE_MBUF_F_RX_L4_CKSUM_GOOD;
const uint64_t gw_RTE_MBUF_F_RX_L4_CKSUM_BAD = RTE_MBUF_F_RX_L4_CKSUM_BAD;
const uint64_t gw_RTE_MBUF_F_TX_IPV4 = RTE_MBUF_F_TX_IPV4;
const uint64_t gw_RTE_MBUF_F_TX_IPV6 = RTE_MBUF_F_TX_IPV6;
const uint64_t gw_RTE_MBUF_F_TX_IP_CKSUM = RTE_MBUF_F_TX_IP_CKSUM;
const uint64_t gw_RTE_MBUF_F_TX_TCP_CKSUM = RTE_MBUF_F_TX_TCP_CKSUM;
const uint64_t gw_RTE_MBUF_F_TX_UDP_CKSUM = RTE_MBUF_F_TX_UDP_CKSUM;
const uint64_t gw_RTE_MBUF_F_TX_L4_MASK = RTE_MBUF_F_TX_L4_MASK;
const uint64_t gw_RTE_ETH_RX_OFFLOAD_RSS_HASH = RTE_ETH_RX_OFFLOAD_RSS_HASH;
const uint64_t gw_RTE_ETH_RX_OFFLOAD_IPV4_CKSUM = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
const uint64_t gw_RTE_ETH_RX_OFFLOAD_TCP_CKSUM = RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
const uint64_t gw_RTE_ETH_RX_OFFLOAD_UDP_CKSUM = RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
const uint64_t gw_RTE_ETH_TX_OFFLOAD_IPV4_CKSUM = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
const uint64_t gw_RTE_ETH_TX_OFFLOAD_TCP_CKSUM = RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
const uint64_t gw_RTE_ETH_TX_OFFLOAD_UDP_CKSUM = RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
const uint64_t gw_RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE = RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
const uint64_t gw_RTE_ETH_RSS_IP = RTE_ETH_RSS_IP;
const uint64_t gw_RTE_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
const uint64_t gw_RTE_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
const uint32_t gw_RTE_RING_NAMESIZE = RTE_RING_NAMESIZE;
const uint32_t gw_RTE_MEMPOOL_NAMESIZE = RTE_MEMPOOL_NAMESIZE;
