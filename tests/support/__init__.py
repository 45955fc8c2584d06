"""What the tests share: fake and real gateways, proxies, a driver for real runs, waits."""
