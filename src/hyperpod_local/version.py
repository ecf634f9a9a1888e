"""The release, in a module of its own so that any room can name it without importing the
package root (which brings in the mock)."""

__version__ = "0.1.0"
