"""argparse, sys.argv and __name__ as in a normal run; --exit-code N exits before any step."""
import argparse
import sys

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--exit-code", type=int, default=None)
    args = parser.parse_args()
    if args.exit_code is not None:
        sys.exit(args.exit_code)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()


if __name__ == "__main__":
    main()
