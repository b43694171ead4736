import sys

from tests.release_fixtures import build

print(build(sys.argv[1] if len(sys.argv) > 1 else "0011_onboarding"))
