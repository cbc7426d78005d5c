// Upload page: send the picture to /api/predict, show the annotated copy and a table of faces.
// No framework and nothing inline, so the page works under a strict Content-Security-Policy.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload");
  const input = document.getElementById("file");
  const drop = document.getElementById("drop");
  const status = document.getElementById("status");
  const result = document.getElementById("result");
  const picture = document.getElementById("annotated");
  const table = document.getElementById("faces");
  const palette = JSON.parse(table.dataset.palette);
  const maxBytes = Number(form.dataset.maxBytes);

  const say = (text, isError = false) => {
    status.textContent = text;
    status.className = isError ? "error" : "";
  };

  // Text only (textContent), never HTML: names come from the model, but stay on the safe side.
  const cell = (row, text) => {
    const td = row.insertCell();
    td.textContent = text;
    return td;
  };

  const show = (data) => {
    picture.src = data.annotated;
    const body = table.tBodies[0];
    body.replaceChildren();
    data.faces.forEach((face, i) => {
      const row = body.insertRow();
      row.className = "face";
      cell(row, String(i + 1));
      const name = cell(row, face.name);
      name.className = "name";
      name.style.setProperty("--swatch", palette[face.name] || "#a0a0a0");
      cell(row, face.probability.toFixed(2));
      cell(row, face.top.map((t) => `${t.name} ${t.probability.toFixed(2)}`).join(", "));
      cell(row, face.box.map((v) => Math.round(v)).join(", "));
    });
    result.hidden = false;
    const n = data.faces.length;
    say(n ? `${n} face${n > 1 ? "s" : ""} found (${data.width}x${data.height})`
          : `no faces found (${data.width}x${data.height})`);
  };

  const upload = async (file) => {
    if (!file) return;
    if (file.size > maxBytes) {
      say(`${file.name} is too large (limit ${maxBytes / 1048576} MB)`, true);
      return;
    }
    const body = new FormData();
    body.append("file", file);
    say(`looking at ${file.name}...`);
    try {
      const response = await fetch("api/predict?annotated=1", { method: "POST", body });
      const data = await response.json().catch(() => ({ error: response.statusText }));
      if (!response.ok) {
        say(`${file.name}: ${data.error || response.status}`, true);
        return;
      }
      show(data);
    } catch (err) {
      say(`upload failed: ${err.message}`, true);
    }
  };

  input.addEventListener("change", () => upload(input.files[0]));
  ["dragenter", "dragover"].forEach((type) =>
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    }));
  ["dragleave", "drop"].forEach((type) =>
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.remove("over");
    }));
  drop.addEventListener("drop", (e) => upload(e.dataTransfer.files[0]));
});
