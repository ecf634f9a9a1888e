// The fleet grid: one canvas per instance group, a cell per node coloured by its status.
// A canvas, not a DOM element per node, so a group of 10,000 nodes is one element and a
// change redraws only the cells that changed.
(function () {
  "use strict";

  const STATUS_COLORS = {
    Running: "#2e9d4f",
    Pending: "#e0b100",
    ShuttingDown: "#8a56c9",
    Failure: "#d63b3b",
    SystemUpdating: "#2f7fd6",
    DeepHealthCheckInProgress: "#18a3a3",
    NotFound: "#7a828c",
    DetachInProgress: "#c77d2e",
    AttachInProgress: "#c77d2e",
  };
  const UNKNOWN_COLOR = "#b8bfc8";
  const SELECTED_COLOR = "#1d232b";
  const FAULT_COLOR = "#111111";

  function statusColor(status) {
    return STATUS_COLORS[status] || UNKNOWN_COLOR;
  }

  // The status whose colour a pixel has, if any (what a person sees in a cell).
  function statusOfColor(r, g, b) {
    for (const [status, hex] of Object.entries(STATUS_COLORS)) {
      const value = parseInt(hex.slice(1), 16);
      if ((value >> 16) === r && ((value >> 8) & 255) === g && (value & 255) === b) {
        return status;
      }
    }
    return null;
  }

  function cellSize(count) {
    if (count <= 64) return [26, 3];
    if (count <= 400) return [16, 2];
    if (count <= 2500) return [11, 2];
    return [8, 1];
  }

  class GroupGrid {
    // `events`: {hover(node, event), leave(), click(node, event)}.
    constructor(canvas, events) {
      this.canvas = canvas;
      this.ctx = canvas.getContext("2d", { alpha: false });
      this.events = events;
      this.nodes = [];
      this.dirty = new Set();
      this.full = true;
      this.width = 0;
      this.columns = 1;
      this.size = 26;
      this.gap = 3;
      canvas.addEventListener("mousemove", (event) => {
        const node = this.nodeAt(event.offsetX, event.offsetY);
        if (node) this.events.hover(node, event);
        else this.events.leave();
      });
      canvas.addEventListener("mouseleave", () => this.events.leave());
      canvas.addEventListener("click", (event) => {
        const node = this.nodeAt(event.offsetX, event.offsetY);
        if (node) this.events.click(node, event);
      });
    }

    setNodes(nodes) {
      this.nodes = nodes;
      this.full = true;
    }

    changed(node) {
      if (!this.full) this.dirty.add(node.index);
    }

    relayout() {
      this.full = true;
    }

    // Draw what changed since the last call: every cell after a layout change, else only the
    // cells marked.
    paint(width) {
      if (width !== this.width) {
        this.width = width;
        this.full = true;
      }
      if (this.full) {
        this.drawAll();
      } else if (this.dirty.size) {
        for (const index of this.dirty) {
          const node = this.nodes[index];
          if (node) this.drawCell(node);
        }
      }
      this.dirty.clear();
      this.full = false;
    }

    drawAll() {
      const [size, gap] = cellSize(this.nodes.length);
      this.size = size;
      this.gap = gap;
      const pitch = size + gap;
      this.columns = Math.max(1, Math.floor((this.width + gap) / pitch));
      const rows = Math.max(1, Math.ceil(this.nodes.length / this.columns));
      const height = rows * pitch - gap;
      const ratio = window.devicePixelRatio || 1;
      const cssWidth = Math.min(this.width, this.columns * pitch - gap);
      this.canvas.style.width = cssWidth + "px";
      this.canvas.style.height = height + "px";
      this.canvas.width = Math.round(cssWidth * ratio);
      this.canvas.height = Math.round(height * ratio);
      this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      this.ctx.fillStyle = "#ffffff";
      this.ctx.fillRect(0, 0, cssWidth, height);
      for (let i = 0; i < this.nodes.length; i++) {
        this.nodes[i].index = i;
        this.drawCell(this.nodes[i]);
      }
    }

    position(index) {
      const pitch = this.size + this.gap;
      return [(index % this.columns) * pitch, Math.floor(index / this.columns) * pitch];
    }

    drawCell(node) {
      const ctx = this.ctx;
      const size = this.size;
      const [x, y] = this.position(node.index);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(x, y, size, size);
      ctx.fillStyle = statusColor(node.status);
      if (node.id) {
        ctx.fillRect(x, y, size, size);
      } else {
        // No instance yet: an outline of the status colour.
        const edge = Math.max(1, Math.floor(size / 5));
        ctx.fillRect(x, y, size, edge);
        ctx.fillRect(x, y + size - edge, size, edge);
        ctx.fillRect(x, y, edge, size);
        ctx.fillRect(x + size - edge, y, edge, size);
      }
      if (node.fault) {
        const mark = Math.max(3, Math.floor(size / 2.5));
        ctx.fillStyle = FAULT_COLOR;
        ctx.beginPath();
        ctx.moveTo(x + size - mark, y);
        ctx.lineTo(x + size, y);
        ctx.lineTo(x + size, y + mark);
        ctx.closePath();
        ctx.fill();
      }
      if (node.selected) {
        const line = size >= 16 ? 3 : 2;
        ctx.fillStyle = SELECTED_COLOR;
        ctx.fillRect(x, y, size, line);
        ctx.fillRect(x, y + size - line, size, line);
        ctx.fillRect(x, y, line, size);
        ctx.fillRect(x + size - line, y, line, size);
      }
    }

    nodeAt(offsetX, offsetY) {
      const pitch = this.size + this.gap;
      const column = Math.floor(offsetX / pitch);
      const row = Math.floor(offsetY / pitch);
      if (column >= this.columns || offsetX - column * pitch > this.size) return null;
      if (offsetY - row * pitch > this.size) return null;
      return this.nodes[row * this.columns + column] || null;
    }

    // The cell's centre in the page's viewport coordinates.
    center(node) {
      const [x, y] = this.position(node.index);
      const box = this.canvas.getBoundingClientRect();
      return { x: box.left + x + this.size / 2, y: box.top + y + this.size / 2 };
    }

    // The status a person sees in the cell: the colour of its centre pixel.
    shownStatus(node) {
      const [x, y] = this.position(node.index);
      const ratio = window.devicePixelRatio || 1;
      const middle = Math.floor(this.size / 2);
      const pixel = this.ctx.getImageData(
        Math.floor((x + middle) * ratio), Math.floor((y + middle) * ratio), 1, 1).data;
      return statusOfColor(pixel[0], pixel[1], pixel[2]);
    }
  }

  window.HpGrid = { GroupGrid, STATUS_COLORS, statusColor };
})();
