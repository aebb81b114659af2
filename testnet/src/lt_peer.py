"""A libtorrent peer for btc's tests and `cargo xtask bench`, through
python3-libtorrent.

usage: lt_peer.py seed|leech TORRENT SAVE_PATH PORT [HOST:PORT...]

It binds 127.0.0.1:PORT with DHT, local discovery, UPnP, NAT-PMP and uTP
off, speaks plaintext (as every peer in the benchmark does), and keeps
libtorrent's other defaults. It finds peers through the torrent's
tracker and dials any HOST:PORT given. A seeder runs until it is killed. A leecher
exits with status 0 once every piece is verified, or 1 on an error.
"""

import sys
import time

import libtorrent as lt


def main():
    mode, torrent, save_path, port = sys.argv[1:5]
    session = lt.session({
        "listen_interfaces": "127.0.0.1:" + port,
        "enable_dht": False,
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
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save_path
    handle = session.add_torrent(params)
    for peer in sys.argv[5:]:
        host, _, peer_port = peer.rpartition(":")
        handle.connect_peer((host, int(peer_port)))
    while True:
        status = handle.status()
        if status.errc.value() != 0:
            print("libtorrent: " + status.errc.message(), file=sys.stderr)
            sys.exit(1)
        if mode == "leech" and status.is_seeding:
            return
        time.sleep(0.02)


main()
