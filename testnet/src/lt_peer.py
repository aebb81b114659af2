"""A libtorrent peer for btc's tests and `cargo xtask bench`, through
python3-libtorrent.

usage: lt_peer.py seed|leech TORRENT SAVE_PATH PORT [HOST:PORT...]

It binds 127.0.0.1:PORT (LT_IP=ADDRESS for another loopback address, which
its dials also come from) with DHT, local discovery, UPnP, NAT-PMP and uTP
off, speaks plaintext (as every peer in the benchmark does), and keeps
libtorrent's other defaults. It finds peers through the torrent's tracker
and dials any HOST:PORT given. TORRENT may be a magnet link.

- LT_DHT=HOST:PORT: its DHT runs, bootstrapping from that node alone, with
  the settings loopback needs, and it announces the torrent there every few
  seconds.
- LT_UPLOAD_LIMIT=BYTES caps its upload rate, loopback peers included.
- LT_ENCRYPTION=require: it takes and makes only encrypted connections
  (MSE/PE with RC4); LT_ENCRYPTION=default leaves libtorrent's own
  encryption settings.
- LT_TRANSPORT=utp: it dials and accepts over uTP alone; LT_TRANSPORT=both
  over uTP and TCP.

A seeder runs until it is killed. A leecher exits with status 0 once every
piece is verified, or 1 on an error.
"""

import os
import sys
import time

import libtorrent as lt


def main():
    mode, torrent, save_path, port = sys.argv[1:5]
    ip = os.environ.get("LT_IP", "127.0.0.1")
    dht = os.environ.get("LT_DHT")
    settings = {
        "listen_interfaces": ip + ":" + port,
        # Its dials come from that address too, as across hosts.
        "outgoing_interfaces": ip,
        "enable_dht": bool(dht),
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        # Every peer here is 127.0.0.1.
        "allow_multiple_connections_per_ip": True,
        # 2 = pe_disabled: a plaintext handshake, no MSE/PE attempt first.
        "out_enc_policy": 2,
        "alert_mask": 0,
    }
    transport = os.environ.get("LT_TRANSPORT", "tcp")
    if transport in ("utp", "both"):
        settings.update({"enable_outgoing_utp": True, "enable_incoming_utp": True})
    if transport == "utp":
        settings.update({"enable_outgoing_tcp": False, "enable_incoming_tcp": False})
    if os.environ.get("LT_ENCRYPTION") == "require":
        # pe_forced both ways, RC4 only.
        settings.update({"in_enc_policy": 0, "out_enc_policy": 0, "allowed_enc_level": 2})
    elif os.environ.get("LT_ENCRYPTION") == "default":
        # libtorrent's own: MSE tried both ways, either method.
        del settings["out_enc_policy"]
    limited = bool(os.environ.get("LT_UPLOAD_LIMIT"))
    if limited:
        settings["upload_rate_limit"] = int(os.environ["LT_UPLOAD_LIMIT"])
    if dht:
        # Its defaults refuse loopback nodes and block an address that
        # sends more than a few messages (see LAB.md).
        settings.update({
            "dht_bootstrap_nodes": "",
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_block_ratelimit": 1000,
        })
    session = lt.session(settings)
    if limited:
        # libtorrent puts peers on local networks (every peer here) in a
        # class of their own that no rate limit applies to: put everyone in
        # the global class, which the limit does.
        everyone = lt.ip_filter()
        every = 1 << lt.session.global_peer_class_id
        everyone.add_rule("0.0.0.0", "255.255.255.255", every)
        everyone.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", every)
        session.set_peer_class_filter(everyone)
    if dht:
        host, _, dht_port = dht.rpartition(":")
        session.add_dht_node((host, int(dht_port)))
    if torrent.startswith("magnet:"):
        params = lt.parse_magnet_uri(torrent)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(torrent)
    params.save_path = save_path
    handle = session.add_torrent(params)
    for peer in sys.argv[5:]:
        host, _, peer_port = peer.rpartition(":")
        handle.connect_peer((host, int(peer_port)))
    next_announce = 0
    while True:
        if dht and time.monotonic() >= next_announce and session.status().dht_nodes > 0:
            handle.force_dht_announce()
            next_announce = time.monotonic() + 3
        status = handle.status()
        if status.errc.value() != 0:
            print("libtorrent: " + status.errc.message(), file=sys.stderr)
            sys.exit(1)
        if mode == "leech" and status.is_seeding:
            return
        time.sleep(0.02)


main()
