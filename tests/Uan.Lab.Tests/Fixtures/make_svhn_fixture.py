# Writes svhn_scipy_32x32.mat, a 3-image file in SVHN's layout, with SciPy's MAT v5 writer (an implementation
# independent of the reader under test). X[i, j, k, n] = (i + 3j + 50k + 7n) mod 256 (0-based row, column, channel,
# image), y = [10, 1, 5] as a double column. Run: python3 make_svhn_fixture.py (SciPy >= 1.10).
import numpy as np
from scipy.io import savemat

i, j, k, n = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), np.arange(3), indexing="ij")
X = ((i + 3 * j + 50 * k + 7 * n) % 256).astype(np.uint8)
y = np.array([[10.0], [1.0], [5.0]])
savemat("svhn_scipy_32x32.mat", {"X": X, "y": y}, do_compression=True, format="5")
